/**
 * Calendar-aware baselines and volume_spike, decided as the evaluator decides (loadDayBaselines over an in-memory
 * bucket reader, then decideMinute) at a fixed minute: Sunday 2026-11-22, 14:00 in Seoul.
 */
import { describe, expect, it } from 'vitest';
import type { CancelRateSpikeEvidence, ComposedEvidence, VolumeDropEvidence, VolumeSpikeEvidence } from '../lib/evidence.ts';
import { dayKey, dayStart, HOUR, MINUTE } from '../lib/time.ts';
import { baselineDayStarts, loadDayBaselines, rangeAverage, readProfiles, sameWeekdayStarts } from './baseline.ts';
import { decideMinute, spikeCandidates, type MinuteInput } from './decide.ts';
import { parseRules, type RulesConfig } from './rules/config.ts';
import { defaultHolidays } from '../lib/holidays-kr.ts';
import { MemoryReader } from './testing/memory-reader.ts';

const tz = 'Asia/Seoul';
const today = Date.parse('2026-11-21T15:00:00Z'); // Sunday 2026-11-22, 00:00 in Seoul
const M = today + 14 * HOUR - MINUTE; // the minute ending at 14:00
const end = M + MINUTE;
const windowFrom = end - 60 * MINUTE;
const B = 1_000_000_000n;

/** Per hour of every day of the last `days` days: `perDay(weekday)` / 24 (0 = Sunday). */
function history(r: MemoryReader, id: string, days: number, perDay: (weekday: number) => bigint): void {
  for (const d of baselineDayStarts(today, days, tz)) {
    const amount = perDay(new Date(d + 9 * HOUR).getUTCDay());
    if (amount > 0n) for (let h = 0; h < 24; h++) r.add(id, d + h * HOUR, { approvals: 100, approvedAmount: amount / 24n });
  }
}

/** Today from 00:00 to the end of M at `perDay` / 24 an hour. */
function todaySoFar(r: MemoryReader, id: string, perDay: bigint): void {
  for (let t = today; t < end; t += 10 * MINUTE) r.add(id, t, { approvals: 10, approvedAmount: perDay / 24n / 6n });
}

/** A weekday-heavy B2B merchant: 1.44B KRW on other days, a quarter of it on Sundays. */
const weekdayHeavy = (w: number) => (w === 0 ? 360_000_000n : 1_440_000_000n);

async function decide(r: MemoryReader, rules: RulesConfig, categories = new Map<string, string>()) {
  const base = await loadDayBaselines(r, today, rules.baselineDays, tz, (_id, avg) => avg >= rules.volume_drop.minDailyAmount, {
    weeks: rules.sameWeekdayWeeks, minSameWeekdays: rules.minSameWeekdays, holidays: new Set(rules.holidays), categories,
    cohort: { minApprovals: rules.cancel_rate_spike.minBaselineApprovals, minMerchants: rules.cancel_rate_spike.minCohortMerchants },
  });
  const hs = today + 13 * HOUR;
  const ids = [...base.eligible];
  const window = await r.totalsByMerchant(windowFrom, end);
  const tracked = { cancel_rate_spike: new Set<string>(), volume_drop: new Set<string>(), volume_spike: new Set<string>(), receivable: new Set<string>() };
  await readProfiles(r, base, spikeCandidates(rules, window, new Map(), tracked.volume_spike));
  const input: MinuteInput = {
    minute: M, today, windowFrom, ingestLagMs: 0, replay: false, rules, maxIngestLagMs: 120_000, slackEnabled: false,
    window, partialHour: await r.totalsByMerchant(hs, end), todayHours: await r.totals(ids, today, hs), baselines: base, silences: [],
    firing: new Map(), signatures: new Map(), tracked,
  };
  const d = decideMinute(input);
  const verdict = (rule: string, id: string) => d.rows.find((x) => x.e.rule === rule && x.e.merchantId === id)?.e;
  return { d, base, verdict, fired: (rule: string) => d.transitions.filter((t) => t.rule === rule && t.kind === 'fired').map((t) => t.merchantId).sort() };
}

describe('calendar-aware baselines', () => {
  it('takes the same weekdays of the last 4 weeks, holidays left out', () => {
    const days = sameWeekdayStarts(today, 4, tz, new Set()).map((d) => dayKey(d, tz));
    expect(days).toEqual(['2026-10-25', '2026-11-01', '2026-11-08', '2026-11-15']);
    expect(sameWeekdayStarts(today, 4, tz, new Set(['2026-11-08'])).map((d) => dayKey(d, tz))).toEqual(['2026-10-25', '2026-11-01', '2026-11-15']);
    expect(dayStart(today, tz)).toBe(today);
  });

  it('the default holidays are the Korean public holidays of 2026 and 2027, lunar and substitute days included', () => {
    const h = defaultHolidays();
    expect(h).toEqual(expect.arrayContaining(['2026-02-17', '2026-09-25', '2026-10-05', '2027-02-07', '2027-02-09', '2027-09-15', '2027-12-27']));
    expect(parseRules({}).holidays).toEqual(h);
  });

  it('a window across midnight takes its first part from the late evening of the baseline days', () => {
    const p = new Float64Array(25);
    p[23] = 600;
    p[0] = 1200;
    expect(rangeAverage(p, -30 * MINUTE, 30 * MINUTE, 1)).toBe(300 + 600);
    expect(rangeAverage(p, 10 * MINUTE, 40 * MINUTE, 2)).toBe(300);
  });

  it('a weekday-heavy ≥ 1B merchant on its quiet weekday at its usual level: silent by default, fires with last_7_days', async () => {
    const r = new MemoryReader(tz);
    history(r, 'b2b', 28, weekdayHeavy);
    todaySoFar(r, 'b2b', 360_000_000n);
    const def = await decide(r, parseRules({}));
    expect(def.fired('volume_drop')).toEqual([]);
    const e = def.verdict('volume_drop', 'b2b')!;
    expect(e.status).toBe('clear');
    const ev = e.evidence as VolumeDropEvidence;
    expect(ev.baseline).toMatchObject({ kind: 'same_weekday', days: ['2026-10-25', '2026-11-01', '2026-11-08', '2026-11-15'], fallback: null });
    expect(ev.todayVsBaseline).toBeCloseTo(1, 2);
    const flat = await decide(r, parseRules({ volume_drop: { baseline: 'last_7_days' } }));
    expect(flat.fired('volume_drop')).toEqual(['b2b']);
    const fe = flat.verdict('volume_drop', 'b2b')!.evidence as VolumeDropEvidence;
    expect(fe.baseline.kind).toBe('last_7_days');
    expect(fe.baseline.days).toHaveLength(7);
    expect(fe.todayVsBaseline).toBeLessThan(0.3);
  });

  it('the same shape with a real drop on the quiet weekday fires', async () => {
    const r = new MemoryReader(tz);
    history(r, 'b2b', 28, weekdayHeavy);
    todaySoFar(r, 'b2b', 120_000_000n); // a third of its usual Sunday
    const { fired, verdict } = await decide(r, parseRules({}));
    expect(fired('volume_drop')).toEqual(['b2b']);
    expect((verdict('volume_drop', 'b2b')!.evidence as VolumeDropEvidence).todayVsBaseline).toBeCloseTo(1 / 3, 2);
  });

  it('falls back to the 7-day mean with fewer than 2 same weekdays, and says so', async () => {
    const r = new MemoryReader(tz);
    history(r, 'young', 10, () => 1_440_000_000n);
    todaySoFar(r, 'young', 200_000_000n);
    const { fired, verdict } = await decide(r, parseRules({}));
    expect(fired('volume_drop')).toEqual(['young']);
    expect((verdict('volume_drop', 'young')!.evidence as VolumeDropEvidence).baseline).toMatchObject({ kind: 'last_7_days', fallback: expect.stringMatching(/1 same weekday with activity/) });
  });

  it('holidays are left out of the baseline; on a holiday volume_drop does not judge', async () => {
    const r = new MemoryReader(tz);
    history(r, 'b2b', 28, (w) => (w === 0 ? 360_000_000n : 1_440_000_000n));
    r.add('b2b', Date.parse('2026-11-14T15:00:00Z') + HOUR, { approvedAmount: 5n * B }); // a one-off on Sunday 11-15
    todaySoFar(r, 'b2b', 360_000_000n);
    const withHoliday = await decide(r, parseRules({ holidays: ['2026-11-15'] }));
    expect((withHoliday.verdict('volume_drop', 'b2b')!.evidence as VolumeDropEvidence).baseline.days).toEqual(['2026-10-25', '2026-11-01', '2026-11-08']);
    expect(withHoliday.fired('volume_drop')).toEqual([]);
    expect((await decide(r, parseRules({}))).fired('volume_drop')).toEqual(['b2b']); // the one-off in the baseline

    const stopped = new MemoryReader(tz);
    history(stopped, 'b2b', 28, weekdayHeavy); // nothing today: a holiday
    const h = await decide(stopped, parseRules({ holidays: ['2026-11-22'] }));
    expect(h.fired('volume_drop')).toEqual([]);
    expect(h.verdict('volume_drop', 'b2b')).toMatchObject({ status: 'not_evaluated', condition: null, reason: expect.stringMatching(/^holiday/) });
    expect((await decide(stopped, parseRules({}))).fired('volume_drop')).toEqual(['b2b']);
  });
});

describe('volume_spike', () => {
  it('fires on a bust-out: ≥ 5 × the same 60 minutes on the same weekdays and ≥ 10M KRW', async () => {
    const r = new MemoryReader(tz);
    for (const id of ['bust', 'busy', 'small', 'new']) history(r, id, id === 'new' ? 3 : 28, () => 57_600_000n); // 2.4M an hour
    const add = (id: string, amount: bigint) => { for (let t = windowFrom; t < end; t += 6 * MINUTE) r.add(id, t, { approvals: 5, approvedAmount: amount / 10n }); };
    add('bust', 20_000_000n); // ×8.3
    add('busy', 11_000_000n); // ×4.6
    add('small', 9_000_000n); // below the 10M guard
    add('new', 30_000_000n); // 3 days of history
    const { fired, verdict, d } = await decide(r, parseRules({}));
    expect(fired('volume_spike')).toEqual(['bust']);
    const e = verdict('volume_spike', 'bust')!.evidence as VolumeSpikeEvidence;
    expect(e.baseline).toMatchObject({ kind: 'same_weekday', days: ['2026-10-25', '2026-11-01', '2026-11-08', '2026-11-15'], sameWindowAverage: '2400000' });
    expect(e.windowVsBaseline).toBeCloseTo(20 / 2.4, 3);
    expect(verdict('volume_spike', 'busy')!.status).toBe('clear');
    expect(verdict('volume_spike', 'small')).toBeUndefined(); // the quiet fast path
    expect(d.counts.volume_spike.not_evaluated).toBe(2); // 'small', and 'new' (too little history)
    expect(verdict('volume_spike', 'new')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/^too little history/) });
    expect((await decide(r, parseRules({ holidays: ['2026-11-22'] }))).fired('volume_spike')).toEqual([]);
    expect((await decide(r, parseRules({ volume_spike: { multiplier: 4 } }))).fired('volume_spike')).toEqual(['bust', 'busy']);
  });
});

describe('new merchants', () => {
  it('a merchant 3 days old with a cancel surge fires against its cohort (same category and size band), and says so', async () => {
    const r = new MemoryReader(tz);
    const categories = new Map<string, string>();
    // Six established food merchants of ~1,000-9,999 approvals a day cancelling 1-3%, and other categories.
    for (let i = 0; i < 6; i++) {
      const id = `food${i}`;
      categories.set(id, 'food');
      for (const d of baselineDayStarts(today, 7, tz)) for (let h = 0; h < 24; h++) r.add(id, d + h * HOUR, { approvals: 100, cancels: 1 + (i % 3), approvedAmount: 2_000_000n });
    }
    for (let i = 0; i < 6; i++) {
      const id = `travel${i}`;
      categories.set(id, 'travel');
      for (const d of baselineDayStarts(today, 7, tz)) for (let h = 0; h < 24; h++) r.add(id, d + h * HOUR, { approvals: 100, cancels: 20, approvedAmount: 2_000_000n });
    }
    // The new merchant: 3 days of history (too little: < 100 approvals), then 120 approvals and 30 cancels in the hour.
    categories.set('newfood', 'food');
    categories.set('newtravel', 'travel');
    for (const id of ['newfood', 'newtravel']) {
      for (const d of baselineDayStarts(today, 3, tz)) r.add(id, d + 12 * HOUR, { approvals: 10 });
      for (let t = windowFrom; t < end; t += MINUTE) r.add(id, t, { approvals: 2, cancels: t % (2 * MINUTE) === 0 ? 1 : 0, approvedAmount: 40_000n });
    }
    const { fired, verdict } = await decide(r, parseRules({}), categories);
    expect(fired('cancel_rate_spike')).toEqual(['newfood']);
    const e = verdict('cancel_rate_spike', 'newfood')!.evidence as CancelRateSpikeEvidence;
    expect(e.cohort).toEqual({ category: 'food', sizeBand: 3, merchants: 6, rate: 0.02 });
    expect(e.baseline.approvals).toBe(30); // its own history, too little
    // Its travel twin cancels like travel merchants do (20%): clear against its cohort.
    expect(verdict('cancel_rate_spike', 'newtravel')).toMatchObject({ status: 'clear' });
    // Without cohorts, neither is judged.
    const off = await decide(r, parseRules({ cancel_rate_spike: { minCohortMerchants: 0 } }), categories);
    expect(off.fired('cancel_rate_spike')).toEqual([]);
    expect(off.verdict('cancel_rate_spike', 'newfood')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/^too little history/) });
  });
});

describe('rules composed from metrics', () => {
  const cancelAmount = { name: 'cancel_amount', metric: 'cancel_amount_rate', baseline: 'last_7_days', compare: 'multiple', k: 3, minApprovals: 10, minCancels: 1, minBaselineApprovals: 100 };

  it('canceled ÷ approved amount in 60 minutes ≥ 3 × its 7-day value fires for a merchant whose few cancels are huge', async () => {
    const r = new MemoryReader(tz);
    for (const id of ['huge', 'usual']) {
      // 7 days: 2,400 approvals of 50,000 KRW a day, 2% of them cancelled in full.
      for (const d of baselineDayStarts(today, 7, tz)) for (let h = 0; h < 24; h++) r.add(id, d + h * HOUR, { approvals: 100, approvedAmount: 5_000_000n, cancels: 2, canceledAmount: 100_000n });
      for (let t = windowFrom; t < end; t += MINUTE) r.add(id, t, { approvals: 2, approvedAmount: 100_000n });
    }
    // Two cancels in the hour (below cancel_rate_spike's guard of 5), of 2.5M KRW each: 83% of the hour's amount.
    r.add('huge', end - 5 * MINUTE, { cancels: 2, canceledAmount: 5_000_000n });
    r.add('usual', end - 5 * MINUTE, { cancels: 2, canceledAmount: 100_000n });
    const { fired, verdict } = await decide(r, parseRules({ composed: [cancelAmount] }));
    expect(fired('composed:cancel_amount')).toEqual(['huge']);
    expect(fired('cancel_rate_spike')).toEqual([]);
    const e = verdict('composed:cancel_amount', 'huge')!.evidence as ComposedEvidence;
    expect(e).toMatchObject({ metric: 'cancel_amount_rate', compare: 'multiple', k: 3, baseline: { kind: 'last_7_days', value: 0.02 } });
    expect(e.window.value).toBeCloseTo(5 / 6, 5);
    expect(verdict('composed:cancel_amount', 'usual')).toMatchObject({ status: 'clear' });
    // Without the rule, nothing.
    expect((await decide(r, parseRules({}))).d.transitions).toEqual([]);
  });

  it('volume_spike as a composed rule gives the same verdicts as volume_spike', async () => {
    const r = new MemoryReader(tz);
    for (const id of ['bust', 'busy', 'small', 'new']) history(r, id, id === 'new' ? 3 : 28, () => 57_600_000n);
    const add = (id: string, amount: bigint) => { for (let t = windowFrom; t < end; t += 6 * MINUTE) r.add(id, t, { approvals: 5, approvedAmount: amount / 10n }); };
    add('bust', 20_000_000n); add('busy', 11_000_000n); add('small', 9_000_000n); add('new', 30_000_000n);
    const spike = { name: 'spike', metric: 'approved_amount', baseline: 'same_weekday', compare: 'multiple', k: 5, minWindowAmount: 10_000_000 };
    const { d } = await decide(r, parseRules({ composed: [spike] }));
    const verdicts = (rule: string) => d.rows.filter((x) => x.e.rule === rule).map((x) => [x.e.merchantId, x.e.status, x.e.condition]);
    expect(verdicts('composed:spike')).toEqual(verdicts('volume_spike'));
    expect(verdicts('composed:spike')).toEqual([['bust', 'breach', true], ['busy', 'clear', false], ['new', 'not_evaluated', false]]);
  });

  it('a wrong composed rule names its path', () => {
    const bad = (() => { try { parseRules({ composed: [{ ...cancelAmount, metric: 'refunds' }, { name: 'x', metric: 'cancels', baseline: 'same_weekday', compare: 'more', k: -1 }] }); } catch (e) { return e as Error; } })();
    expect(bad?.message).toMatch(/composed\.0\.metric must be one of/);
    expect(bad?.message).toMatch(/composed\.1\.compare must be one of/);
    expect(bad?.message).toMatch(/composed\.1\.k must be a number from 0 to 1000/);
    expect(bad?.message).toMatch(/composed\.1\.baseline "same_weekday" applies to the metric "approved_amount" only/);
    expect(() => parseRules({ composed: [cancelAmount, cancelAmount] })).toThrow(/composed\.1\.name "cancel_amount" is used twice/);
    expect(() => parseRules({ composed: [{ name: 'all', metric: 'approved_amount', baseline: 'same_weekday', compare: 'multiple', k: 5 }] })).toThrow(/composed\.0\.minWindowAmount must be at least 1000000/);
    expect(() => parseRules({ volume_spike: { minWindowAmount: 0 } })).toThrow(/volume_spike\.minWindowAmount must be an integer from 1000000/);
  });
});

describe('rules config', () => {
  it('a wrong baseline, holiday or spike value names its path', () => {
    expect(() => parseRules({ volume_drop: { baseline: 'last_week' } })).toThrow(/volume_drop\.baseline must be one of "same_weekday", "last_7_days"/);
    expect(() => parseRules({ holidays: ['2026-02-30'] })).toThrow(/holidays\.0 must be a local date/);
    expect(() => parseRules({ volume_spike: { multiplier: 0.5 } })).toThrow(/volume_spike\.multiplier/);
    expect(() => parseRules({ overrides: { '7': { volume_spike: { minWindowAmount: -1 } } } })).toThrow(/overrides\.7\.volume_spike\.minWindowAmount/);
  });
});
