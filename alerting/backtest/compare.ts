/**
 * A backtest's result as the API shows it (docs/contracts.md "Rules and backtests"): the alerts, a summary
 * per rule, the difference with the live alerts of the same period, and the analysts' dispositions of the live alerts
 * the backtest also raised. Pure.
 */
import type { Evidence } from '../../lib/evidence.ts';
import { dayKey, iso } from '../../lib/time.ts';
import { RULES, type RuleName } from '../rules/config.ts';
import type { PeriodAlert } from '../risk-store/index.ts';
import type { BacktestAlert } from './engine.ts';
import { HOLD_HORIZON_DAYS, type AlertMoney } from './exposure.ts';

export interface ResultAlert { rule: RuleName; merchantId: string; firedAt: string; resolvedAt: string | null; evidence: Evidence; renotified: number; carried: boolean; money: AlertMoney | null }

/**
 * The money of a backtest (docs/detection.md "Money in backtests"; amounts are decimal strings, exact KRW). A merchant
 * is held once, at its first alert fired in the period; the totals add those holds' figures.
 */
export interface MoneySummary {
  horizonDays: number;
  /** Merchants held (with an alert fired in the period). */
  merchants: number;
  receivableAtFiring: string;
  peakReceivable: string;
  withheld: string;
  covered: string;
  /**
   * The held merchants whose alerts analysts closed as false positives (every judged live alert the backtest also
   * raised for the merchant is false_positive): how many, and the KRW their holds would have kept for nothing.
   */
  falsePositive: { merchants: number; withheld: string };
  /** Per rule, over its alerts fired in the period (a merchant with alerts of two rules counts in both). */
  byRule: Record<string, { alerts: number; receivableAtFiring: string; covered: string }>;
}
export interface Pair {
  rule: RuleName; merchantId: string; firedAt: string; resolvedAt: string | null;
  live: { id: string; firedAt: string; resolvedAt: string | null; disposition: string | null };
  /** Same fired and resolved minutes. */
  exact: boolean;
}
export interface LiveOnly { id: string; rule: RuleName; merchantId: string; firedAt: string; resolvedAt: string | null; disposition: string | null }
export interface Quality { confirmed: number; falsePositive: number; benign: number; precision: number | null }

export interface BacktestResult {
  alerts: ResultAlert[];
  summary: Record<RuleName, { fired: number; merchants: number; live: { fired: number; merchants: number } }>;
  /**
   * Matching: a backtest alert and a live alert of the same rule and merchant whose firing periods overlap are the
   * same alert (`exact` when fired and resolved minutes agree too); the rest is only one side's.
   */
  vsLive: { both: Pair[]; onlyBacktest: ResultAlert[]; onlyLive: LiveOnly[]; exact: boolean };
  /** Dispositions of the live alerts the backtest also raised (precision of the candidate where analysts judged). */
  quality: Record<RuleName, Quality>;
  /** The same over every live alert of the period, for comparison. */
  liveQuality: Record<RuleName, Quality>;
  /** Alerts fired per local day, backtest vs live. */
  perDay: { day: string; backtest: number; live: number }[];
  /** null: no settlement source (receivable not judged, no money figures). */
  money: MoneySummary | null;
  minutes: number;
  evaluations: number;
}

function quality(dispositions: (string | null)[]): Quality {
  const q = { confirmed: 0, falsePositive: 0, benign: 0, precision: null as number | null };
  for (const d of dispositions) {
    if (d === 'confirmed') q.confirmed++;
    else if (d === 'false_positive') q.falsePositive++;
    else if (d === 'benign') q.benign++;
  }
  q.precision = q.confirmed + q.falsePositive ? q.confirmed / (q.confirmed + q.falsePositive) : null;
  return q;
}

const isoOrNull = (t: number | null) => (t === null ? null : iso(t));

/** The money totals (see MoneySummary); `sorted` by firing time. */
function moneySummary(sorted: BacktestAlert[], both: Pair[], enabled: boolean): MoneySummary | null {
  if (!enabled) return null;
  const first = new Map<string, AlertMoney>();
  const byRule: MoneySummary['byRule'] = {};
  for (const a of sorted) {
    if (!a.money) continue;
    if (!first.has(a.merchantId)) first.set(a.merchantId, a.money);
    const r = (byRule[a.rule] ??= { alerts: 0, receivableAtFiring: '0', covered: '0' });
    r.alerts++;
    r.receivableAtFiring = (BigInt(r.receivableAtFiring) + BigInt(a.money.receivableAtFiring)).toString();
    r.covered = (BigInt(r.covered) + BigInt(a.money.covered)).toString();
  }
  const judged = new Map<string, string[]>();
  for (const p of both) if (p.live.disposition === 'confirmed' || p.live.disposition === 'false_positive') judged.set(p.merchantId, [...(judged.get(p.merchantId) ?? []), p.live.disposition]);
  const sum = (k: 'receivableAtFiring' | 'peakReceivable' | 'withheld' | 'covered', ms: AlertMoney[]) => ms.reduce((s, m) => s + BigInt(m[k]), 0n).toString();
  const held = [...first.values()];
  const fp = [...first].filter(([m]) => judged.get(m)?.every((d) => d === 'false_positive')).map(([, x]) => x);
  return {
    horizonDays: HOLD_HORIZON_DAYS, merchants: first.size,
    receivableAtFiring: sum('receivableAtFiring', held), peakReceivable: sum('peakReceivable', held), withheld: sum('withheld', held), covered: sum('covered', held),
    falsePositive: { merchants: fp.length, withheld: sum('withheld', fp) },
    byRule,
  };
}

/** `money`: the backtest had a settlement source (its alerts carry money figures). */
export function compareWithLive(bt: BacktestAlert[], live: PeriodAlert[], o: { from: number; to: number; tz: string; minutes: number; evaluations: number; money?: boolean }): BacktestResult {
  const sorted = [...bt].sort((a, b) => a.firedAt - b.firedAt || a.rule.localeCompare(b.rule) || a.merchantId.localeCompare(b.merchantId));
  const alerts: ResultAlert[] = sorted.map((a) => ({
    rule: a.rule, merchantId: a.merchantId, firedAt: iso(a.firedAt), resolvedAt: isoOrNull(a.resolvedAt), evidence: a.evidence, renotified: a.renotified, carried: a.carried, money: a.money,
  }));
  const liveBy = new Map<string, PeriodAlert[]>();
  for (const l of live) {
    const k = `${l.rule}\u0000${l.merchantId}`;
    liveBy.set(k, [...(liveBy.get(k) ?? []), l]);
  }
  const used = new Set<string>();
  const both: Pair[] = [];
  const onlyBacktest: ResultAlert[] = [];
  sorted.forEach((a, idx) => {
    const end = a.resolvedAt ?? o.to;
    const cands = (liveBy.get(`${a.rule}\u0000${a.merchantId}`) ?? []).filter((l) => !used.has(l.id) && l.firedAt < end && a.firedAt < (l.resolvedAt ?? o.to));
    const l = cands.find((c) => c.firedAt === a.firedAt) ?? cands[0];
    if (!l) { onlyBacktest.push(alerts[idx]); return; }
    used.add(l.id);
    both.push({
      rule: a.rule, merchantId: a.merchantId, firedAt: iso(a.firedAt), resolvedAt: isoOrNull(a.resolvedAt),
      live: { id: l.id, firedAt: iso(l.firedAt), resolvedAt: isoOrNull(l.resolvedAt), disposition: l.disposition },
      exact: l.firedAt === a.firedAt && l.resolvedAt === a.resolvedAt,
    });
  });
  const onlyLive: LiveOnly[] = live.filter((l) => !used.has(l.id)).map((l) => ({
    id: l.id, rule: l.rule, merchantId: l.merchantId, firedAt: iso(l.firedAt), resolvedAt: isoOrNull(l.resolvedAt), disposition: l.disposition,
  }));

  const summary = {} as BacktestResult['summary'];
  const q = {} as BacktestResult['quality'];
  const lq = {} as BacktestResult['liveQuality'];
  for (const rule of new Set<RuleName>([...RULES, ...sorted.map((a) => a.rule), ...live.map((a) => a.rule)])) {
    const b = sorted.filter((a) => a.rule === rule);
    const l = live.filter((a) => a.rule === rule);
    summary[rule] = {
      fired: b.filter((a) => a.firedAt >= o.from).length, merchants: new Set(b.map((a) => a.merchantId)).size,
      live: { fired: l.filter((a) => a.firedAt >= o.from).length, merchants: new Set(l.map((a) => a.merchantId)).size },
    };
    q[rule] = quality(both.filter((p) => p.rule === rule).map((p) => p.live.disposition));
    lq[rule] = quality(l.map((a) => a.disposition));
  }
  const days = new Map<string, { backtest: number; live: number }>();
  const day = (t: number) => {
    const k = dayKey(t, o.tz);
    let c = days.get(k);
    if (!c) days.set(k, (c = { backtest: 0, live: 0 }));
    return c;
  };
  for (let t = o.from; t < o.to; t += 3_600_000) day(t);
  for (const a of sorted) if (a.firedAt >= o.from) day(a.firedAt).backtest++;
  for (const a of live) if (a.firedAt >= o.from) day(a.firedAt).live++;
  return {
    alerts, summary, quality: q, liveQuality: lq, minutes: o.minutes, evaluations: o.evaluations, money: moneySummary(sorted, both, o.money ?? false),
    vsLive: { both, onlyBacktest, onlyLive, exact: both.every((p) => p.exact) && !onlyBacktest.length && !onlyLive.length },
    perDay: [...days].map(([day, c]) => ({ day, ...c })),
  };
}
