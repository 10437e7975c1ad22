/**
 * The running sums of window.ts (merchants numbered, counters in a Float64Array) against plain bigint sums of the
 * same slices: adds and removes in any order, merchants whose sums return to zero, the Map view the rules read, and
 * the switch to exact reads when a value or a sum leaves the range doubles hold exactly.
 */
import { describe, expect, it } from 'vitest';
import { addTotals, emptyTotals, isEmpty, type Totals } from '../aggregator/store/index.ts';
import { MerchantNumbers, patchSlice, RangeSum, sliceOfHash, sliceOfTotals, totalsOfSlice, type TotalsByMerchant } from './window.ts';

const MIN = 60_000;
const plain = (m: TotalsByMerchant) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, t]) => [k, `${t.approvals}/${t.approvedAmount}/${t.cancels}/${t.canceledAmount}`]));

function reference(slices: Map<string, Map<string, Totals>>): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const s of slices.values()) for (const [m, t] of s) addTotals(out.get(m) ?? (out.set(m, emptyTotals()), out.get(m)!), t);
  for (const [m, t] of out) if (isEmpty(t)) out.delete(m);
  return out;
}

describe('RangeSum', () => {
  it('equals bigint sums through adds, removes and a moving range; the view behaves as a Map', () => {
    let seed = 11;
    const rnd = (n: number) => { seed = (seed * 48271) % 2147483647; return seed % n; };
    const numbers = new MerchantNumbers();
    const sum = new RangeSum(numbers);
    const held = new Map<string, Map<string, Totals>>();
    for (let minute = 0; minute < 200; minute++) {
      const totals = new Map<string, Totals>();
      for (let k = 0; k < 30; k++) {
        // counters may be negative (a DELETE of an earlier minute's row) and cancel out to zero
        const t = { approvals: rnd(5) - 1, approvedAmount: BigInt(rnd(1_000_000_000)) * 1000n - 7n, cancels: rnd(3) - 1, canceledAmount: BigInt(rnd(5000)) };
        totals.set(`m${rnd(60)}`, t);
      }
      const slice = sliceOfTotals(minute * MIN, totals, numbers)!;
      sum.setRange((minute - 59) * MIN, (minute + 1) * MIN);
      for (const key of held.keys()) if (Number(key) < minute - 59) held.delete(key);
      sum.add(String(minute), slice);
      held.set(String(minute), totals);
      if (minute % 17 === 5) { sum.remove(String(minute - 3)); held.delete(String(minute - 3)); }
      const want = reference(held);
      const got = sum.sums;
      expect(plain(got)).toEqual(plain(want));
      expect(got.size).toBe(want.size);
      for (const m of ['m0', 'm7', 'nobody']) {
        expect(got.has(m)).toBe(want.has(m));
        expect(got.get(m)).toEqual(want.get(m));
      }
      expect(sum.exact).toBe(true);
    }
  });

  it('patches a slice in place from a delta, the sums following the difference, many times over', () => {
    const numbers = new MerchantNumbers();
    const hash = (o: Record<string, [number, number, number, number]>) =>
      Object.entries(o).flatMap(([m, v]) => ['n', 'a', 'c', 'x'].flatMap((l, k) => (v[k] ? [`${l}:${m}`, String(v[k])] : []))).join('\0');
    const delta = (o: Record<string, [number, number, number, number]>) =>
      Object.entries(o).flatMap(([m, v]) => ['n', 'a', 'c', 'x'].flatMap((l, k) => [`${l}:${m}`, String(v[k])])).join('\0');
    const state: Record<string, [number, number, number, number]> = { a: [1, 100, 0, 0], b: [2, 300, 1, 50], c: [5, 900, 0, 0] };
    const s = sliceOfHash(0, 'f1', hash(state), numbers)!;
    const sum = new RangeSum(numbers);
    sum.setRange(0, MIN);
    sum.add('0/0', s);
    for (let round = 0; round < 200; round++) {
      const m = ['a', 'b', 'c', `n${round % 7}`][round % 4];
      state[m] = round % 5 === 0 ? [0, 0, 0, 0] : [round, round * 10, round % 3, round % 3 ? 7 : 0];
      const d = patchSlice(s, `f${round + 2}`, delta({ [m]: state[m] }), numbers)!;
      sum.patch('0/0', d.minus, d.plus);
      const want = sliceOfHash(0, 'x', hash(state), numbers)!;
      expect(plain(totalsOfSlice(s, numbers))).toEqual(plain(totalsOfSlice(want, numbers)));
      expect(plain(sum.sums)).toEqual(plain(totalsOfSlice(want, numbers)));
      expect(s.merchants.length).toBeLessThan(160); // zeroed entries are dropped as they pile up (800 without)
    }
    expect(s.fingerprint).toBe('f201');
  });

  it('decodes a window-index hash (skipping its version) and refuses values doubles do not hold exactly', () => {
    const numbers = new MerchantNumbers();
    const s = sliceOfHash(0, 'f', ['~v', '123', 'n:a', '2', 'a:a', '9007199254740991', 'c:b:x', '1', 'x:b:x', '-40'].join('\0'), numbers)!;
    const sum = new RangeSum(numbers);
    sum.add('0', s);
    expect(plain(sum.sums)).toEqual({ a: '2/9007199254740991/0/0', 'b:x': '0/0/1/-40' });
    expect(sliceOfHash(0, 'f', 'a:a\u00009007199254740993', numbers)).toBeNull();
    // two safe values whose sum is not
    sum.add('1', sliceOfHash(MIN, 'f', 'a:a\u00005', numbers)!);
    expect(sum.exact).toBe(false);
    expect(sliceOfTotals(0, new Map([['a', { ...emptyTotals(), canceledAmount: 2n ** 60n }]]), numbers)).toBeNull();
  });

  it('gives a slice back as the exact totals it was made of (the backtest leaving doubles)', () => {
    const numbers = new MerchantNumbers();
    numbers.of('earlier');
    const totals = new Map<string, Totals>([
      ['a', { approvals: 3, approvedAmount: 9_007_199_254_740_991n, cancels: 0, canceledAmount: 0n }],
      ['b:x', { approvals: -1, approvedAmount: -20_000n, cancels: 2, canceledAmount: 40_000n }],
    ]);
    expect(plain(totalsOfSlice(sliceOfTotals(0, totals, numbers)!, numbers))).toEqual(plain(totals));
  });
});
