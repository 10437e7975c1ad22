/**
 * Triage writes against the evaluator's own writes on a real risk store: the evaluator resolving an alert while
 * analysts acknowledge, note and close it loses neither side.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/harness/services.ts';
import { commitMinute, type TransitionWrite } from './minutes.ts';
import { riskStore } from '../testing/fixtures.ts';
import { applyTriage, triageHistory } from './triage.ts';

let db: pg.Pool;
beforeAll(async () => { db = await riskStore(await freshDatabase('triage')); });
afterAll(async () => { await db?.end(); });

const M = Date.parse('2026-11-21T05:00:00Z');
const write = (kind: TransitionWrite['kind'], alertId: string | undefined, minute: number): TransitionWrite => ({
  kind, rule: 'cancel_rate_spike', merchantId: '42', alertId, ruleVersion: 'v1', replay: false,
  life: { firedAt: M, lastNotifiedAt: M, clearMinutes: kind === 'resolved' ? 5 : 0 },
  evidence: {
    rule: 'cancel_rate_spike', ruleVersion: 'v1', minute: new Date(minute).toISOString(), multiplier: 2, threshold: 0.04,
    window: { from: new Date(minute - 3_600_000).toISOString(), to: new Date(minute).toISOString(), approvals: 100, cancels: 20, rate: 0.2 },
    baseline: { from: '2026-11-14T15:00:00Z', to: '2026-11-20T15:00:00Z', approvals: 1000, cancels: 20, rate: 0.02 },
  },
  notification: { status: 'suppressed', reason: 'slack not configured', silenceId: null },
});

describe('triage beside the evaluator', () => {
  it('an alert resolved while analysts triage it keeps both the resolve and every triage write', async () => {
    const fired = await commitMinute(db, { name: 'e', previous: null, minute: M, transitions: [write('fired', undefined, M)], clearCounts: [], evaluations: [], ruleVersion: 'v1', ingestLagMs: 0 });
    const id = fired.fired.values().next().value!;
    const resolveAt = M + 6 * 60_000;
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => applyTriage(db, id, i % 2 ? 'Ana' : 'Min', { action: 'note', text: `n${i}` })),
      applyTriage(db, id, 'Ana', { action: 'ack' }),
      applyTriage(db, id, 'Min', { action: 'disposition', disposition: 'confirmed', note: 'x' }),
      commitMinute(db, { name: 'e', previous: M, minute: resolveAt, transitions: [write('resolved', id, resolveAt)], clearCounts: [], evaluations: [], ruleVersion: 'v1', ingestLagMs: 0 }),
    ]);
    expect(results.slice(0, 12)).toEqual(Array(12).fill(true));
    const { rows: [a] } = await db.query('SELECT state, resolved_at, ack_by, disposition, disposition_by FROM alerts WHERE id = $1', [id]);
    expect(a).toMatchObject({ state: 'resolved', disposition: 'confirmed', disposition_by: 'Min' });
    expect(a.resolved_at.getTime()).toBe(resolveAt);
    expect(['Ana', 'Min']).toContain(a.ack_by);
    expect((await triageHistory(db, id)).length).toBe(12);
    expect(await applyTriage(db, '987654321', 'Ana', { action: 'ack' })).toBe(false);
  });
});
