import type { Evidence } from '../../lib/evidence.ts';
import type { RuleName } from './config.ts';

export type EvaluationStatus = 'breach' | 'clear' | 'not_evaluated';

/**
 * One rule's verdict for one merchant and one closed minute. `condition` is what the alert lifecycle sees:
 * true (breach), false (clear, or not evaluated for lack of activity/history/eligibility — nothing to alert on),
 * null (unknown: the data cannot tell yet — ingestion lag, a tiny baseline window — so a firing alert neither
 * resolves nor counts a clear minute). `reason` is stable text (no per-minute numbers) so rows change only when
 * the verdict does; the numbers are in `evidence`.
 */
export interface Evaluation {
  rule: RuleName;
  merchantId: string;
  minute: number;
  status: EvaluationStatus;
  reason: string | null;
  condition: boolean | null;
  evidence: Evidence;
}

/**
 * An Evaluation whose evidence is built on first use: the evaluator judges ~100,000 merchants a minute but stores
 * evidence only for the few rows that change and for transitions.
 */
export function withEvidence(fields: Omit<Evaluation, 'evidence'>, build: () => Evidence): Evaluation {
  let cached: Evidence | undefined;
  return { ...fields, get evidence() { return (cached ??= build()); } };
}
