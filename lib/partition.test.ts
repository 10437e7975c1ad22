import { describe, expect, it } from 'vitest';
import { candidatePartitions, messageKey, partitionOfKey } from './partition.ts';

describe('partitioning', () => {
  it('keys a normal merchant by itself and a hot one by merchant#shard', () => {
    expect(messageKey('42', false, '1001', 8)).toBe('42');
    expect(messageKey('42', true, '1001', 8)).toMatch(/^42#[0-7]$/);
    expect(messageKey('42', true, '1001', 1)).toBe('42');
  });
  it('spreads one hot merchant over several partitions, all among its candidates', () => {
    const parts = new Set<number>();
    for (let id = 0; id < 1000; id++) parts.add(partitionOfKey(messageKey('7', true, String(id), 8), 12));
    expect(parts.size).toBeGreaterThan(3);
    const cand = candidatePartitions('7', 12, 8);
    for (const p of parts) expect(cand).toContain(p);
    expect(cand).toContain(partitionOfKey('7', 12));
  });
  it('balances many merchants over partitions', () => {
    const counts = new Array(12).fill(0);
    for (let m = 1; m <= 100_000; m++) counts[partitionOfKey(String(m), 12)]++;
    const mean = 100_000 / 12;
    expect(Math.max(...counts) / mean).toBeLessThan(1.05);
  });
});
