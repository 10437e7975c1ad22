/**
 * The latest evaluation of each (rule, merchant) (`evaluations`, written by the minute commit in minutes.ts), as the
 * API's merchant page and its "riskiest merchants" list read them.
 */
import type pg from 'pg';
import { EVIDENCE_RATIO_SQL } from '../../lib/evidence.ts';

export interface EvaluationJson { rule: string; minute: string; status: string; reason: string | null; evidence: unknown }

/** A merchant's latest evaluation of each rule. */
export async function merchantEvaluations(db: pg.Pool, merchantId: string): Promise<EvaluationJson[]> {
  const { rows } = await db.query<{ rule: string; minute: Date; status: string; reason: string | null; evidence: unknown }>(
    'SELECT rule, minute, status, reason, evidence FROM evaluations WHERE merchant_id = $1 ORDER BY rule', [merchantId]);
  return rows.map((r) => ({ rule: r.rule, minute: r.minute.toISOString(), status: r.status, reason: r.reason, evidence: r.evidence }));
}

/** How a rule's latest evaluation ranks a merchant, from the evidence the evaluator stores (lib/evidence.ts). */
const RATIO_SQL = EVIDENCE_RATIO_SQL;
const numOf = (expr: string) => expr.replaceAll(/num\(([^)]*)\)/g, (_, e) => `(CASE WHEN jsonb_typeof(${e}) = 'number' OR (jsonb_typeof(${e}) = 'string' AND (${e})#>>'{}' ~ '^-?[0-9.]+(e-?[0-9]+)?$') THEN ((${e})#>>'{}')::float8 END)`);

export interface RankedEvaluation { merchantId: string; rule: string; status: string; minute: string; ratio: number | null; evidence: unknown }

/**
 * The riskiest merchants at the most recent evaluated minute: highest cancel rate against baseline (`cancel_rate`),
 * or deepest volume drop (`volume_drop`).
 */
export async function topEvaluations(db: pg.Pool, by: 'cancel_rate' | 'volume_drop', limit: number): Promise<RankedEvaluation[]> {
  const rule = by === 'cancel_rate' ? 'cancel_rate_spike' : 'volume_drop';
  const ratio = numOf(RATIO_SQL[by]);
  const { rows } = await db.query<{ merchant_id: string; status: string; minute: Date; ratio: number | null; evidence: unknown }>(
    `WITH latest AS (SELECT max(minute) AS m FROM evaluations WHERE rule = $1 AND status <> 'not_evaluated')
     SELECT merchant_id, status, minute, evidence, ${ratio} AS ratio
       FROM evaluations, latest
      WHERE rule = $1 AND status <> 'not_evaluated' AND minute = latest.m
      ORDER BY ratio ${by === 'cancel_rate' ? 'DESC' : 'ASC'} NULLS LAST, merchant_id
      LIMIT $2`, [rule, limit]);
  return rows.map((r) => ({
    merchantId: r.merchant_id, rule, status: r.status, minute: r.minute.toISOString(), ratio: r.ratio === null ? null : Number(r.ratio), evidence: r.evidence,
  }));
}
