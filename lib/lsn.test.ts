import { describe, expect, it } from 'vitest';
import { compareLsn, comparePosition, formatLsn, LsnError, parseLsn } from './lsn.ts';

describe('lsn', () => {
  it('parses and formats both halves', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe((1n << 64n) - 1n);
    expect(formatLsn((1n << 64n) - 1n)).toBe('FFFFFFFF/FFFFFFFF');
    expect(formatLsn(0n)).toBe('0/0');
    expect(parseLsn(' 1/2\n')).toBe((1n << 32n) | 2n); // surrounding blanks, as before the fast path
  });
  it('orders numerically, not as text', () => {
    expect(compareLsn('0/9', '0/10')).toBeLessThan(0);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBeGreaterThan(0);
    expect(comparePosition({ lsn: '0/10', seq: 2 }, { lsn: '0/10', seq: 10 })).toBeLessThan(0);
  });
  it('rejects malformed input with a message that shows the expected form', () => {
    for (const bad of ['', '0', '0/', '/0', 'x/1', '0/1/2', '123456789/0', '0/123456789', '+1/2', '1/-2', '1 /2', 'G/0']) {
      expect(() => parseLsn(bad)).toThrow(LsnError);
    }
    expect(() => parseLsn('zz')).toThrow(/e\.g\. 0\/16B3748/);
  });
});
