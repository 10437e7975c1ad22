/**
 * receivable: the merchant's receivable after its last payout (lib/exposure.ts: cancels since its settled-through
 * time exceeding its approvals since then) is at least `minReceivable` KRW. Judged at the end of each closed minute
 * for the merchants that owe anything (alerting/exposure.ts keeps that set exactly) and for those with a firing
 * alert, which resolves once a payout or new approvals bring the receivable under the threshold.
 */
import type { Exposure } from '../../lib/exposure.ts';
import type { ReceivableEvidence } from '../../lib/evidence.ts';
import { iso } from '../../lib/time.ts';
import type { ReceivableParams } from './config.ts';
import { withEvidence, type Evaluation } from './types.ts';

export function evaluateReceivable(merchantId: string, minute: number, exposure: Exposure, p: ReceivableParams, ruleVersion: string): Evaluation {
  const evidence = (): ReceivableEvidence => ({ rule: 'receivable', ruleVersion, minute: iso(minute), minReceivable: p.minReceivable, exposure });
  const base = { rule: 'receivable' as const, merchantId, minute };
  if (!p.enabled) return withEvidence({ ...base, status: 'not_evaluated', reason: 'rule disabled for this merchant', condition: false }, evidence);
  const breach = BigInt(exposure.receivable) >= BigInt(p.minReceivable);
  return withEvidence({ ...base, status: breach ? 'breach' : 'clear', reason: null, condition: breach }, evidence);
}
