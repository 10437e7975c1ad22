/**
 * A backtest: every closed minute of [from, to) decided by the live code — the same `decideMinute` (rules, guards,
 * significance test, lifecycle with resolve-after and re-notify), the same day-level inputs (inputs.ts: baselines,
 * eligibility, today's full hours) and the same running window sums (window.ts's RangeSum) — over the buckets as
 * they stand now. Nothing is written, published or sent: transitions become backtest alerts in memory.
 *
 * What a live minute depends on besides the buckets is reproduced: the lifecycle state at `from` (the live alerts
 * firing then, with their clear-minute count and last notification — as an activation at `from` would continue
 * them), and the ingestion lag the live evaluator saw at each minute it evaluated (volume_drop is not evaluated
 * while ingestion lags); minutes the live evaluator never evaluated count as not lagging.
 *
 * The window is fed minute by minute: the minutes are read in passes of `chunkMinutes` (the all-merchants minute
 * index where it still holds them, else one pass over the minute tier), so a day costs 24 reads, not 1,440 window reads.
 *
 * With a settlement source, receivable is judged too: each merchant's money at risk is kept minute by minute from
 * those same minute totals (./exposure.ts, read from the store only when a payout becomes paid), and every alert
 * fired in the period gets its money — receivable at firing, and what a hold then would have covered.
 */
import { addTotals, emptyTotals, hasMinuteTotals, hasMoney, isEmpty, type BucketReader, type Settlement, type Totals } from '../../aggregator/store/index.ts';
import type { Evidence } from '../../lib/evidence.ts';
import type { Exposure } from '../../lib/exposure.ts';
import type { Logger } from '../../lib/logger.ts';
import { dayStart, hourStart, iso, MINUTE } from '../../lib/time.ts';
import { applyDecision, decideMinute, emptyMemory, firingMerchants, receivableFloor, spikeCandidates } from '../decide.ts';
import type { MerchantDirectory } from '../directory.ts';
import { DayInputs } from '../inputs.ts';
import type { RuleName, RulesConfig } from '../rules/config.ts';
import { keyOf, type FiringAlert } from '../risk-store/index.ts';
import { MerchantNumbers, RangeSum, sliceOfTotals, totalsOfSlice, type Slice } from '../window.ts';
import { ExposureHistory, type AlertMoney } from './exposure.ts';

export interface BacktestAlert {
  rule: RuleName;
  merchantId: string;
  firedAt: number;
  /** null: still firing at the end of the period. */
  resolvedAt: number | null;
  /** Evidence of the minute that fired it. */
  evidence: Evidence;
  renotified: number;
  /** Firing at `from` already (taken over from the live state). */
  carried: boolean;
  /** Money at risk at firing and what a hold then would have covered (./exposure.ts); null: carried, or no settlement. */
  money: AlertMoney | null;
}

export interface BacktestInput {
  rules: RulesConfig;
  /** Minute-aligned, from < to. */
  from: number;
  to: number;
  tz: string;
  maxIngestLagMs: number;
  reader: BucketReader;
  /** The live evaluator's merchant directory (cohorts). */
  directory?: MerchantDirectory;
  log: Logger;
  /**
   * Where settled-through times come from (as the live evaluator's `settlement`): receivable is judged and the
   * alerts' money reported. Absent (or a reader without money reads): receivable is not judged, as live without one.
   */
  settlement?: Settlement;
  /** The live lifecycle state at `from` (store.ts firingAt). */
  initial: (FiringAlert & { evidence: Evidence })[];
  /** Ingestion lag the live evaluator saw, by minute (store.ts liveIngestLags). */
  ingestLags: Map<number, number>;
  /**
   * Awaited after every minute with the minutes done: where the runner yields to the live evaluator, reports
   * progress, and stops a cancelled backtest (by throwing).
   */
  onMinute?: (done: number, total: number) => Promise<void>;
  chunkMinutes?: number;
  /** Stops the backtest (BacktestLimitError) when it would keep more alerts than this; default MAX_BACKTEST_ALERTS. */
  maxAlerts?: number;
  /**
   * Where the minutes come from: asked for contiguous, increasing ranges [lo, hi) from `firstMinuteNeeded` on.
   * Default: the bucket store (`minuteTotals`).
   */
  minutes?: (lo: number, hi: number) => Promise<Map<number, Map<string, Totals>>>;
}

/** Alerts a backtest keeps at most: beyond, the thresholds are not worth a result (and its memory stays bounded). */
export const MAX_BACKTEST_ALERTS = 20_000;

/** A backtest that outgrew its bounds; the message says which and what to change. */
export class BacktestLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BacktestLimitError';
  }
}

/** The earliest minute a backtest from `from` reads (the window of its first minute, or its hour when longer). */
export function firstMinuteNeeded(from: number, rules: RulesConfig, tz: string): number {
  return Math.min(from + MINUTE - rules.windowMinutes * MINUTE, Math.max(hourStart(from), dayStart(from, tz)));
}

export interface BacktestOutput {
  alerts: BacktestAlert[];
  minutes: number;
  evaluations: number;
  /** Receivable was judged and the alerts carry their money (a settlement source and a reader of money). */
  money: boolean;
}

export async function runBacktest(i: BacktestInput): Promise<BacktestOutput> {
  const { rules, from, to, tz, reader } = i;
  const chunk = i.chunkMinutes ?? 60;
  const inputs = new DayInputs(reader, rules, { tz, baselineRefreshMs: Infinity, todayRefreshMs: Infinity, log: i.log, now: () => 0, directory: i.directory });
  const mem = emptyMemory(i.initial);
  const alerts = new Map<string, BacktestAlert>();
  for (const a of i.initial) {
    alerts.set(a.id, { rule: a.rule, merchantId: a.merchantId, firedAt: a.life.firedAt, resolvedAt: null, evidence: a.evidence, renotified: 0, carried: true, money: null });
  }

  // Minute slices of the all-merchants totals, read ahead in passes, and summed as the live window does (window.ts).
  // A value or a sum beyond what doubles hold exactly switches the backtest to bigint sums of the minutes: the
  // slices still needed become exact totals again (their values are exact), and later minutes are kept as totals.
  const numbers = new MerchantNumbers();
  const slices = new Map<number, Slice>(); // while the doubles are exact
  const minutes = new Map<number, ReadonlyMap<string, Totals>>(); // after
  let exact = true;
  const leaveDoubles = () => {
    exact = false;
    for (const [t, s] of slices) minutes.set(t, totalsOfSlice(s, numbers));
    slices.clear();
  };
  // Money at risk minute by minute (receivable, and the alerts' money): fed the minutes' totals from `from` on.
  const history = i.settlement && hasMoney(reader) ? new ExposureHistory(reader, i.settlement, { from, to }) : null;
  const moneyMinutes = new Map<number, ReadonlyMap<string, Totals>>();
  const watches = new Map<string, ReturnType<ExposureHistory['watch']>>();
  let loadedTo = 0;
  const load = async (lo: number, hi: number) => {
    const byMinute = i.minutes ? await i.minutes(lo, hi)
      : hasMinuteTotals(reader) ? await reader.minuteTotals(lo, hi)
      : new Map(await Promise.all(range(lo, hi).map(async (t) => [t, await reader.totalsByMerchant(t, t + MINUTE, '1m')] as const)));
    for (const t of range(lo, hi)) {
      const totals = byMinute.get(t) ?? new Map<string, Totals>();
      if (history && t >= from) moneyMinutes.set(t, totals);
      const slice = exact ? sliceOfTotals(t, totals, numbers) : null;
      if (slice) { slices.set(t, slice); continue; }
      if (exact) leaveDoubles();
      minutes.set(t, totals);
    }
    loadedTo = hi;
  };
  const window = new RangeSum(numbers);
  const hour = new RangeSum(numbers);

  const total = (to - from) / MINUTE;
  let evaluations = 0;
  let n = 0;
  for (let M = from; M < to; M += MINUTE) {
    const today = dayStart(M, tz);
    const end = M + MINUTE;
    const windowFrom = end - rules.windowMinutes * MINUTE;
    const hs = Math.max(hourStart(M), today);
    const first = Math.min(windowFrom, hs);
    if (loadedTo === 0) await load(firstMinuteNeeded(from, rules, tz), Math.min(to, Math.max(end, from + chunk * MINUTE)));
    else if (end > loadedTo) await load(loadedTo, Math.min(to, loadedTo + chunk * MINUTE));
    window.setRange(windowFrom, end);
    hour.setRange(hs, end);
    for (const t of minutes.keys()) if (t < first) minutes.delete(t);
    for (const [t, s] of slices) {
      if (t < first) { slices.delete(t); continue; }
      const key = String(t);
      for (const sum of [window, hour]) if (sum.covers(t) && !sum.has(key)) sum.add(key, s);
    }
    if (exact && !(window.exact && hour.exact)) leaveDoubles();

    const base = await inputs.baselines(today);
    const todayHours = await inputs.todayFullHours(base, today, hs, firingMerchants(mem.firing, 'volume_drop'));
    const win = exact ? window.sums : sumOf(minutes, windowFrom, end);
    await inputs.profileSpikeCandidates(base, spikeCandidates(rules, win, mem.firing, mem.tracked.volume_spike));
    let exposures: Map<string, Exposure> | undefined;
    if (history) {
      await history.advance(M, moneyMinutes.get(M) ?? new Map());
      moneyMinutes.delete(M);
      exposures = await history.exposuresFor(M, { atLeast: receivableFloor(rules), tracked: mem.tracked.receivable ?? [], firing: firingMerchants(mem.firing, 'receivable') });
    }
    const d = decideMinute({
      minute: M, today, windowFrom, ingestLagMs: i.ingestLags.get(M) ?? 0, replay: true, rules, maxIngestLagMs: i.maxIngestLagMs,
      slackEnabled: false, window: win, partialHour: exact ? hour.sums : sumOf(minutes, hs, end), todayHours, baselines: base, silences: [],
      firing: mem.firing, signatures: mem.signatures, tracked: mem.tracked, exposures,
    });
    evaluations += d.evaluated;
    const fired = new Map<string, string>();
    for (const t of d.transitions) {
      if (t.kind === 'fired') {
        const max = i.maxAlerts ?? MAX_BACKTEST_ALERTS;
        if (alerts.size >= max) throw new BacktestLimitError(`stopped at ${iso(M)}: more than ${max} alerts; raise the thresholds or shorten the period`);
        const id = `b${alerts.size + 1}`;
        fired.set(keyOf(t.rule, t.merchantId), id);
        alerts.set(id, { rule: t.rule, merchantId: t.merchantId, firedAt: M, resolvedAt: null, evidence: t.evidence, renotified: 0, carried: false, money: null });
        if (history) watches.set(id, history.watch(t.merchantId, M));
      } else {
        const a = alerts.get(t.alertId!);
        if (!a) throw new Error(`backtest lost alert ${t.alertId} (${t.rule} ${t.merchantId})`);
        if (t.kind === 'resolved') a.resolvedAt = M;
        else a.renotified++;
      }
    }
    applyDecision(mem, d, (key) => fired.get(key)!);
    await i.onMinute?.(++n, total);
  }
  if (history) {
    const money = await history.moneyOf([...watches.values()]);
    for (const [id, w] of watches) alerts.get(id)!.money = money.get(w)!;
  }
  return { alerts: [...alerts.values()], minutes: total, evaluations, money: history !== null };
}

/** Exact (bigint) per-merchant totals of the minutes in [lo, hi). */
function sumOf(minutes: Map<number, ReadonlyMap<string, Totals>>, lo: number, hi: number): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const [t, totals] of minutes) {
    if (t < lo || t >= hi) continue;
    for (const [m, x] of totals) {
      let sum = out.get(m);
      if (!sum) out.set(m, (sum = emptyTotals()));
      addTotals(sum, x);
    }
  }
  for (const [m, x] of out) if (isEmpty(x)) out.delete(m);
  return out;
}

function range(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let t = lo; t < hi; t += MINUTE) out.push(t);
  return out;
}
