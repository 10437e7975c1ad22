import { describe, expect, it } from 'vitest';
import { addField, emptyTotals, encodeBucketFields, encodeWindowFields, FIELD_KINDS, forEachWindowCounter, WINDOW_LETTERS, type Totals } from './counters.ts';

const sample: Totals = { approvals: 3, approvedAmount: 9_007_199_254_740_993n, cancels: -1, canceledAmount: 0n };

describe('the four counters', () => {
  it('encode a bucket slot as slot × 4 + k, leaving out zero counters, and decode back exactly', () => {
    const out: string[] = [];
    expect(encodeBucketFields(out, 7, sample)).toBe(3);
    expect(out).toEqual(['28', '3', '29', '9007199254740993', '30', '-1']);
    const back = emptyTotals();
    for (let i = 0; i < out.length; i += 2) {
      const f = Number(out[i]);
      expect(Math.floor(f / FIELD_KINDS)).toBe(7);
      addField(back, f % FIELD_KINDS, out[i + 1]);
    }
    expect(back).toEqual(sample);
  });

  it('encode a window-index entry as <letter>:<merchant> and decode back exactly', () => {
    const out: string[] = [];
    expect(encodeWindowFields(out, 'shop:1a', { ...sample, canceledAmount: 5n })).toBe(4);
    expect(out.filter((_, i) => i % 2 === 0)).toEqual(WINDOW_LETTERS.map((l) => `${l}:shop:1a`));
    // decoded as the reader does: the hash as the read script returns it (fields and values joined by NUL)
    const back = emptyTotals();
    forEachWindowCounter(out.join('\0'), (m, k, v) => {
      expect(m).toBe('shop:1a');
      addField(back, k, v);
    });
    expect(back).toEqual({ ...sample, canceledAmount: 5n });
  });

  it('write nothing for an all-zero delta (an UPDATE undone in the same chunk)', () => {
    const out: string[] = [];
    expect(encodeBucketFields(out, 0, emptyTotals()) + encodeWindowFields(out, 'm', emptyTotals())).toBe(0);
    expect(out).toEqual([]);
  });
});
