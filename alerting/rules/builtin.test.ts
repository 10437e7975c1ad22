/**
 * The built-in rules as rules of the composed form (builtin.ts): the same definitions, composed by an admin, give
 * the same verdicts; and the volume rules judge a merchant too young for its baseline against its cohort. Decided as
 * the evaluator decides (loadDayBaselines over an in-memory bucket reader, then decideMinute) at Sunday 2026-11-22,
 * 14:00 in Seoul.
 */
import { describe, expect, it } from 'vitest';
import type { VolumeDropEvidence, VolumeSpikeEvidence } from '../../lib/evidence.ts';
import { HOUR, MINUTE } from '../../lib/time.ts';
import { baselineDayStarts, loadDayBaselines, readProfiles } from '../baseline.ts';
import { decideMinute, spikeCandidates } from '../decide.ts';
import { MemoryReader } from '../testing/memory-reader.ts';
import { parseRules, type RulesConfig } from './config.ts';

const tz = 'Asia/Seoul';
const today = Date.parse('2026-11-21T15:00:00Z'); // Sunday 2026-11-22, 00:00 in Seoul
const M = today + 14 * HOUR - MINUTE;
const end = M + MINUTE;
const windowFrom = end - 60 * MINUTE;

/** Every hour of the last `days` days: `approvals`, `cancels` and `amount` an hour. */
function hours(r: MemoryReader, id: string, days: number, approvals: number, amount: bigint, cancels = 0): void {
  for (const d of baselineDayStarts(today, days, tz)) for (let h = 0; h < 24; h++) r.add(id, d + h * HOUR, { approvals, cancels, approvedAmount: amount });
}

/** Today from 00:00 to the end of M: `approvals` and `amount` an hour (the window's hour included). */
function todayAt(r: MemoryReader, id: string, approvals: number, amount: bigint): void {
  for (let t = today; t < end; t += 10 * MINUTE) r.add(id, t, { approvals: approvals / 6, approvedAmount: amount / 6n });
}

async function decide(r: MemoryReader, rules: RulesConfig, categories: Map<string, string>) {
  const base = await loadDayBaselines(r, today, rules.baselineDays, tz, (_id, avg) => avg >= rules.volume_drop.minDailyAmount, {
    weeks: rules.sameWeekdayWeeks, minSameWeekdays: rules.minSameWeekdays, holidays: new Set(rules.holidays), categories,
    cohort: { minApprovals: rules.cancel_rate_spike.minBaselineApprovals, minMerchants: rules.cancel_rate_spike.minCohortMerchants },
  });
  const hs = today + 13 * HOUR;
  const window = await r.totalsByMerchant(windowFrom, end);
  const tracked = { cancel_rate_spike: new Set<string>(), volume_drop: new Set<string>(), volume_spike: new Set<string>(), receivable: new Set<string>() };
  await readProfiles(r, base, spikeCandidates(rules, window, new Map(), tracked.volume_spike));
  const d = decideMinute({
    minute: M, today, windowFrom, ingestLagMs: 0, replay: false, rules, maxIngestLagMs: 120_000, slackEnabled: false,
    window, partialHour: await r.totalsByMerchant(hs, end), todayHours: await r.totals([...base.eligible], today, hs), baselines: base, silences: [],
    firing: new Map(), signatures: new Map(), tracked,
  });
  return {
    verdict: (rule: string, id: string) => d.rows.find((x) => x.e.rule === rule && x.e.merchantId === id)?.e,
    verdicts: (rule: string) => d.rows.filter((x) => x.e.rule === rule).map((x) => [x.e.merchantId, x.e.status, x.e.condition]),
    fired: (rule: string) => d.transitions.filter((t) => t.rule === rule && t.kind === 'fired').map((t) => t.merchantId).sort(),
  };
}

/** Six established food merchants: 100 approvals and 10M KRW an hour, 1-3 cancels an hour. */
function foodCohort(r: MemoryReader, categories: Map<string, string>): void {
  for (let i = 0; i < 6; i++) {
    categories.set(`food${i}`, 'food');
    hours(r, `food${i}`, 28, 100, 10_000_000n, 1 + (i % 3));
  }
}

describe('the built-in rules as composed rules', () => {
  it('cancel_rate_spike and volume_spike composed from their definitions give the verdicts of the built-ins', async () => {
    const r = new MemoryReader(tz);
    const categories = new Map<string, string>();
    foodCohort(r, categories);
    // cancel_rate_spike: a surge against its own history, a doubling chance explains, a new merchant against its cohort.
    for (const id of ['surge', 'luck']) hours(r, id, 28, 100, 5_000_000n, 2);
    for (let t = windowFrom; t < end; t += MINUTE) {
      r.add('surge', t, { approvals: 2, cancels: t % (2 * MINUTE) === 0 ? 1 : 0, approvedAmount: 100_000n });
      r.add('luck', t, { approvals: 2, cancels: t % (10 * MINUTE) === 0 ? 1 : 0, approvedAmount: 100_000n });
    }
    categories.set('newfood', 'food');
    for (const d of baselineDayStarts(today, 3, tz)) r.add('newfood', d + 12 * HOUR, { approvals: 10 });
    for (let t = windowFrom; t < end; t += MINUTE) r.add('newfood', t, { approvals: 2, cancels: t % (2 * MINUTE) === 0 ? 1 : 0, approvedAmount: 40_000n });
    // volume_spike: a bust-out, a busy hour, a merchant without the history.
    for (const id of ['bust', 'busy']) hours(r, id, 28, 10, 2_400_000n);
    for (let t = windowFrom; t < end; t += 6 * MINUTE) {
      r.add('bust', t, { approvals: 5, approvedAmount: 2_000_000n });
      r.add('busy', t, { approvals: 5, approvedAmount: 1_100_000n });
    }
    const crs = { name: 'crs', metric: 'cancel_rate', baseline: 'last_7_days', compare: 'multiple', k: 2, minApprovals: 20, minCancels: 5, minBaselineApprovals: 100, maxPValue: 1e-4, cohortFallback: 5 };
    const spike = { name: 'spike', metric: 'approved_amount', baseline: 'same_weekday', compare: 'multiple', k: 5, minWindowAmount: 10_000_000, holidays: 'skip' };
    const rules = parseRules({ composed: [crs, spike], volume_spike: { minCohortMerchants: 0 } });
    const { verdicts, fired } = await decide(r, rules, categories);
    expect(verdicts('composed:crs')).toEqual(verdicts('cancel_rate_spike'));
    expect(fired('cancel_rate_spike')).toEqual(['newfood', 'surge']);
    expect(verdicts('composed:spike')).toEqual(verdicts('volume_spike'));
    expect(fired('volume_spike')).toEqual(['bust']);
    // On a holiday neither is judged (a firing alert would hold).
    const h = await decide(r, parseRules({ composed: [crs, spike], holidays: ['2026-11-22'] }), categories);
    expect(h.verdicts('composed:spike')).toEqual(h.verdicts('volume_spike'));
    expect(h.verdict('composed:spike', 'bust')).toMatchObject({ status: 'not_evaluated', condition: null });
  });

  it('a composed option outside its metric is a 400-style error naming the path', () => {
    expect(() => parseRules({ composed: [{ name: 'x', metric: 'approvals', baseline: 'last_7_days', compare: 'multiple', k: 2, maxPValue: 0.01 }] }))
      .toThrow(/composed\.0\.maxPValue applies to the metric "cancel_rate" only/);
    expect(() => parseRules({ composed: [{ name: 'x', metric: 'approvals', baseline: 'last_7_days', compare: 'multiple', k: 2, holidays: 'yes' }] }))
      .toThrow(/composed\.0\.holidays must be "skip"/);
    // Options absent: the stored rule is the one given (its version hash unchanged).
    expect(parseRules({ composed: [{ name: 'x', metric: 'approvals', baseline: 'last_7_days', compare: 'multiple', k: 2 }] }).composed[0]).not.toHaveProperty('maxPValue');
  });
});

describe('new merchants and the volume rules', () => {
  it('a merchant 3 days old is judged against its cohort by volume_spike and volume_drop, and the evidence says so', async () => {
    const r = new MemoryReader(tz);
    const categories = new Map<string, string>();
    foodCohort(r, categories);
    // Six established big food merchants: 1,000 approvals and 125M KRW an hour (3B a day).
    for (let i = 0; i < 6; i++) { categories.set(`bigfood${i}`, 'food'); hours(r, `bigfood${i}`, 28, 1000, 125_000_000n); todayAt(r, `bigfood${i}`, 1000, 125_000_000n); }
    // Three days old, at the food merchants' pace (100 approvals an hour): a bust-out of 100M KRW in the hour,
    // against 10M an hour for its peers; its twin sells 12M.
    for (const id of ['newbust', 'newbusy']) { categories.set(id, 'food'); hours(r, id, 3, 100, 10_000_000n); }
    for (let t = windowFrom; t < end; t += 6 * MINUTE) {
      r.add('newbust', t, { approvals: 10, approvedAmount: 10_000_000n });
      r.add('newbusy', t, { approvals: 10, approvedAmount: 1_200_000n });
    }
    // Three days old and big (3B a day: eligible on its 7-day average, 1.29B), selling at 40% of its pace today.
    categories.set('newbig', 'food');
    hours(r, 'newbig', 3, 1000, 125_000_000n);
    todayAt(r, 'newbig', 400, 50_000_000n);
    const { fired, verdict } = await decide(r, parseRules({}), categories);
    expect(fired('volume_spike')).toEqual(['newbust']);
    const s = verdict('volume_spike', 'newbust')!.evidence as VolumeSpikeEvidence;
    expect(s.cohort).toEqual({ category: 'food', sizeBand: 3, merchants: 6, average: '10000000' });
    expect(s).toMatchObject({ threshold: '50000000', baseline: { sameWindowAverage: '' } });
    expect(verdict('volume_spike', 'newbusy')).toMatchObject({ status: 'clear' });
    // Against its own 7-day mean (its 4 missing days read as zero sales) the drop would hide; its cohort shows it.
    expect(fired('volume_drop')).toEqual(['newbig']);
    const e = verdict('volume_drop', 'newbig')!.evidence as VolumeDropEvidence;
    expect(e.cohort).toMatchObject({ category: 'food', sizeBand: 4, merchants: 6 });
    expect(Number(e.window.approvedAmount)).toBeLessThanOrEqual(Number(e.threshold));
    expect(Number(e.window.approvedAmount)).toBeGreaterThan(Number(e.baseline.sameTimeAverage) * 0.5);
    // Without cohorts: volume_spike does not judge it (too little history), volume_drop misses the drop.
    const off = await decide(r, parseRules({ volume_spike: { minCohortMerchants: 0 }, volume_drop: { minCohortMerchants: 0 } }), categories);
    expect(off.fired('volume_spike')).toEqual([]);
    expect(off.verdict('volume_spike', 'newbust')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/^too little history/) });
    expect(off.fired('volume_drop')).toEqual([]);
  });
});
