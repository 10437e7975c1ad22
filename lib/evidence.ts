/**
 * The evaluation evidence: the JSON the alerting stores with every evaluation row and alert transition
 * (evaluations.evidence, alerts.evidence, alert_transitions.evidence) and the API reads back — as it is, and to
 * rank merchants (`EVIDENCE_RATIO_SQL`). The rules build it (alerting/rules); its shape is declared here so a
 * change of a field and the SQL that reads it are one edit.
 */

interface Span { from: string; to: string }

export interface CancelRateSpikeEvidence {
  rule: 'cancel_rate_spike';
  ruleVersion: string;
  minute: string;
  window: Span & { approvals: number; cancels: number; rate: number | null };
  baseline: Span & { approvals: number; cancels: number; rate: number | null };
  multiplier: number;
  threshold: number | null;
  /** Present once the guards passed and the rates were compared. */
  expectedCancels?: number;
  pValue?: number;
  maxPValue?: number;
  /**
   * Present when the merchant had too little history of its own: it was judged against the median rate of this
   * cohort (same category and size band, `sizeBand` = the decade of approvals a day), and `threshold` is from it.
   */
  cohort?: { category: string; sizeBand: number; merchants: number; rate: number };
}

export interface VolumeDropEvidence {
  rule: 'volume_drop';
  ruleVersion: string;
  minute: string;
  /** Today from local midnight to the end of the minute; amounts are decimal strings (KRW). */
  window: Span & { approvedAmount: string };
  baseline: Span & { sameTimeAverage: string; dailyAverage: string; method: string } & BaselineDays;
  ratio: number;
  threshold: string;
  todayVsBaseline: number | null;
  ingestLagMs: number;
  /** Today's local date when it is a holiday (then the rule does not judge). */
  holiday?: string;
  /** Present when the merchant had too little history of its own: judged against this cohort's median, `threshold` from it. */
  cohort?: VolumeCohortEvidence;
}

/**
 * A volume rule's cohort (same category and size band, `sizeBand` = the decade of approvals a day): `merchants` with
 * history, and `average` = their median daily approved amount scaled to the window (KRW, decimal string).
 */
export interface VolumeCohortEvidence { category: string; sizeBand: number; merchants: number; average: string }

/**
 * Which days formed a volume rule's same-time baseline: `kind` is what was used (`same_weekday`, `last_7_days`),
 * `days` the local dates averaged, `fallback` why same_weekday was asked for and the flat mean used instead.
 */
export interface BaselineDays {
  kind?: 'same_weekday' | 'last_7_days';
  days?: string[];
  fallback?: string | null;
}

export interface VolumeSpikeEvidence {
  rule: 'volume_spike';
  ruleVersion: string;
  minute: string;
  /** The last `windowMinutes` closed minutes; amounts are decimal strings (KRW). */
  window: Span & { approvedAmount: string };
  /** The same window of the local day, averaged over the baseline's days. */
  baseline: { sameWindowAverage: string; method: string } & BaselineDays;
  multiplier: number;
  minWindowAmount: number;
  threshold: string;
  windowVsBaseline: number | null;
  holiday?: string;
  /** As volume_drop's: present when the merchant was judged against its cohort. */
  cohort?: VolumeCohortEvidence;
}

/** A composed rule's verdict (alerting/rules/composed.ts): the metric in the window against its baseline. */
export interface ComposedEvidence {
  rule: `composed:${string}`;
  ruleVersion: string;
  minute: string;
  metric: string;
  compare: 'multiple' | 'fraction';
  k: number;
  window: Span & { value: number | null; approvals: number; cancels: number; approvedAmount: string; canceledAmount: string };
  baseline: { kind: string; value: number | null; from?: string; to?: string; days?: string[]; fallback?: string | null; cohort?: { category: string; sizeBand: number; merchants: number } };
  threshold: number | null;
  /** With the significance guard (maxPValue), once the value was compared. */
  expected?: number;
  pValue?: number;
  maxPValue?: number;
  /** Today's local date when it is a holiday and the rule skips holidays. */
  holiday?: string;
}

/** receivable: the merchant's exposure at the minute's end (lib/exposure.ts) against the threshold. */
export interface ReceivableEvidence {
  rule: 'receivable';
  ruleVersion: string;
  minute: string;
  minReceivable: number;
  exposure: import('./exposure.ts').Exposure;
}

export type Evidence = CancelRateSpikeEvidence | VolumeDropEvidence | VolumeSpikeEvidence | ComposedEvidence | ReceivableEvidence;

/**
 * How the API ranks merchants by a rule's latest evidence, as SQL over the `evidence` jsonb column. `num(e)` is a
 * placeholder the caller expands to a safe cast (evidence written by older versions may hold strings).
 * cancel_rate: window rate ÷ baseline rate; volume_drop: today's amount ÷ the same-time baseline.
 */
export const EVIDENCE_RATIO_SQL = {
  cancel_rate: `num(evidence#>'{window,rate}') / NULLIF(num(evidence#>'{baseline,rate}'), 0)`,
  volume_drop: `COALESCE(num(evidence->'todayVsBaseline'), num(evidence#>'{window,approvedAmount}') / NULLIF(num(evidence#>'{baseline,sameTimeAverage}'), 0))`,
} as const;
