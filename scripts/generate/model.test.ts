import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../lib/args.ts';
import { CancelBook } from './cancel-book.ts';
import { hotCount } from './distribution.ts';
import { IdBlocks } from './ids.ts';
import { Rng } from './random.ts';
import { parseScenario, ScenarioSet, type ScenarioContext } from './scenarios.ts';
import { BIG_VOLUME_KRW, pickMerchants, Workload } from './workload.ts';

describe('pickMerchants', () => {
  it('names distinct merchants deterministically; a few dozen reach 1B KRW a day at the reference scale', () => {
    const a = pickMerchants(1, 100_000);
    expect(pickMerchants(1, 100_000)).toEqual(a);
    expect(new Set([a.normal, a.hot, a.bigVolume, a.bigVolumeStop]).size).toBe(4);
    expect(a.normal).toBeGreaterThan(hotCount(100_000));
    expect(a.hot).toBeLessThanOrEqual(hotCount(100_000));
    expect(a.eligibleBigVolume.length).toBeGreaterThanOrEqual(20);
    const w = new Workload(100_000);
    expect(w.expectedDailyVolume(a.bigVolume, 3_000_000)).toBeGreaterThanOrEqual(BIG_VOLUME_KRW);
    expect(w.expectedDailyVolume(a.bigVolumeStop, 3_000_000)).toBeGreaterThanOrEqual(BIG_VOLUME_KRW);
  });
});

describe('CancelBook', () => {
  it('cancels only payments of the same merchant, each at most once, and owes cancels while empty', () => {
    const book = new CancelBook([100, 100], [0.05, 0.05]);
    const r = new Rng(1);
    book.owe(1);
    expect(book.canPay(1)).toBe(false); // owed, nothing to cancel yet
    book.add(r, 1, 11, 1000, 1);
    book.add(r, 1, 12, 2000, 2);
    book.add(r, 2, 21, 3000, 3);
    expect(book.canPay(1)).toBe(true);
    const e = book.take(r, 1);
    expect([11, 12]).toContain(e.paymentId);
    expect(book.canPay(1)).toBe(false); // debt settled
    book.owe(1);
    expect(book.take(r, 1).paymentId).toBe(e.paymentId === 11 ? 12 : 11);
    book.owe(1);
    expect(book.canPay(1)).toBe(false); // both used
    expect(book.size(2)).toBe(1);
  });
});

describe('IdBlocks', () => {
  it('hands out unique increasing ids across blocks with at most one reservation in flight', async () => {
    let next = 100;
    let inFlight = 0;
    let maxInFlight = 0;
    const blocks = new IdBlocks(async (count) => {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      const first = next; next += count; return first;
    }, 10);
    await blocks.start();
    const seen: number[] = [];
    while (seen.length < 55) {
      const id = blocks.take();
      if (id === null) await blocks.refill(); else seen.push(id);
    }
    expect(new Set(seen).size).toBe(55);
    expect(maxInFlight).toBe(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
  });
});

describe('scenarios', () => {
  const now = Date.parse('2026-11-21T10:00:00Z');
  const ctx: ScenarioContext = { now, merchants: 1000, resolveAlias: (a) => ({ normal: 11, hot: 2, big: 1, big2: 3 })[a] };
  it('parses ISO starts with a parameter, relative starts and aliases', () => {
    expect(parseScenario('cancel_surge:42:2026-11-21T08:00:00Z:4', ctx)).toEqual({ name: 'cancel_surge', merchant: 42, startMs: Date.parse('2026-11-21T08:00:00Z'), factor: 4 });
    expect(parseScenario('volume_drop:big:2026-11-21T17:00:00+09:00', ctx)).toEqual({ name: 'volume_drop', merchant: 1, startMs: Date.parse('2026-11-21T08:00:00Z'), factor: 0.3 });
    expect(parseScenario('full_stop:big2:-2h', ctx)).toEqual({ name: 'full_stop', merchant: 3, startMs: now - 7_200_000, factor: 0 });
    expect(parseScenario('cancel_surge:hot:+90s', ctx).startMs).toBe(now + 90_000);
    expect(parseScenario('cancel_surge:normal:now', ctx).merchant).toBe(11);
    expect(parseScenario('midnight', ctx).name).toBe('midnight');
  });
  it('rejects bad input with the expected form', () => {
    for (const bad of ['surge:1:now', 'cancel_surge', 'cancel_surge:1', 'cancel_surge:x:now', 'cancel_surge:5000:now',
      'cancel_surge:1:2026-11-21T08:00:00', 'cancel_surge:1:now:abc', 'full_stop:1:now:0.5', 'volume_drop:1:now:3']) {
      expect(() => parseScenario(bad, ctx), bad).toThrow(UsageError);
    }
    expect(() => parseScenario('surge:1:now', ctx)).toThrow(/expected name:merchant:start/);
  });
  it('changes only the named merchant, from its start', () => {
    const set = new ScenarioSet([parseScenario('cancel_surge:5:now', ctx), parseScenario('volume_drop:6:+1h:0.3', ctx)]);
    expect(set.cancelFactor(5, now - 1)).toBe(1);
    expect(set.cancelFactor(5, now)).toBe(6);
    expect(set.cancelFactor(6, now)).toBe(1);
    expect(set.volumeFactor(6, now)).toBe(1);
    expect(set.volumeFactor(6, now + 3_600_000)).toBe(0.3);
  });
});

describe('parseFlags', () => {
  const spec = {
    tps: { kind: 'num', min: 0.01, max: 1e6, help: 'transactions per second' },
    days: { kind: 'int', min: 1, max: 10, help: 'days' },
    end: { kind: 'time', help: 'ISO time' },
    scenario: { kind: 'list', help: 'scenario' },
  } as const;
  it('reads --flag value and --flag=value, lists repeat', () => {
    expect(parseFlags('live', ['--tps', '50', '--days=2', '--scenario', 'a', '--scenario=b', '--end', '2026-11-21T00:00:00Z'], spec))
      .toEqual({ tps: 50, days: 2, scenario: ['a', 'b'], end: Date.parse('2026-11-21T00:00:00Z') });
  });
  it('names the flag and the expected form', () => {
    expect(() => parseFlags('live', ['--tps', 'fast'], spec)).toThrow(/--tps "fast" is not a number; expected transactions per second/);
    expect(() => parseFlags('live', ['--nope', '1'], spec)).toThrow(/unknown flag --nope/);
    expect(() => parseFlags('live', ['--tps'], spec)).toThrow(/--tps needs a value/);
    expect(() => parseFlags('live', ['--days', '11'], spec)).toThrow(/outside 1..10/);
    expect(() => parseFlags('live', ['--end', '2026-11-21'], spec)).toThrow(/ISO-8601/);
    expect(() => parseFlags('live', ['stray'], spec)).toThrow(/unexpected argument/);
  });
});
