/** The evaluator's decision for one minute, as a pure function: no Redis, no PostgreSQL, no clock. */
import { describe, expect, it } from 'vitest';
import { emptyTotals, type Totals } from '../aggregator/store/index.ts';
import { HOUR, MINUTE } from '../lib/time.ts';
import { emptyDayBaselines, type DayBaselines } from './baseline.ts';
import { decideMinute, notificationFor, type MinuteInput } from './decide.ts';
import { defaultRules } from './rules/config.ts';
import { keyOf, type FiringAlert } from './risk-store/index.ts';

const today = Date.parse('2026-11-20T15:00:00Z'); // Seoul midnight
const M = today + 10 * HOUR; // 10:00 local
const rules = defaultRules();

const t = (approvals: number, cancels: number, approvedAmount = 0n): Totals => ({ ...emptyTotals(), approvals, cancels, approvedAmount });

function input(over: Partial<MinuteInput> = {}): MinuteInput {
  const baselines: DayBaselines = { ...emptyDayBaselines(today, 7, 'Asia/Seoul'), totals: new Map([['spiky', t(7000, 140)], ['calm', t(7000, 140)]]) };
  return {
    minute: M, today, windowFrom: M + MINUTE - 60 * MINUTE, ingestLagMs: 1000, replay: false, rules, maxIngestLagMs: 120_000,
    slackEnabled: true, window: new Map([['spiky', t(100, 30)], ['calm', t(400, 6)], ['tiny', t(1, 0)]]),
    partialHour: new Map(), todayHours: new Map(), baselines, silences: [],
    firing: new Map(), signatures: new Map(), tracked: { cancel_rate_spike: new Set(), volume_drop: new Set(), volume_spike: new Set(), receivable: new Set() },
    ...over,
  };
}

describe('decideMinute', () => {
  it('fires on a breach with a pending Slack message, writes changed rows, skips quiet merchants', () => {
    const d = decideMinute(input());
    expect(d.transitions).toHaveLength(1);
    expect(d.transitions[0]).toMatchObject({ kind: 'fired', rule: 'cancel_rate_spike', merchantId: 'spiky', replay: false, notification: { status: 'pending' } });
    expect(d.transitions[0].evidence).toMatchObject({ rule: 'cancel_rate_spike', window: { approvals: 100, cancels: 30 } });
    expect(d.nextFiring.get(keyOf('cancel_rate_spike', 'spiky'))).toMatchObject({ id: '', life: { firedAt: M, clearMinutes: 0 } });
    expect(d.rows.map((r) => [r.e.merchantId, r.e.status])).toEqual([['spiky', 'breach'], ['calm', 'clear']]);
    expect(d.counts.cancel_rate_spike).toEqual({ not_evaluated: 1, breach: 1, clear: 1 }); // 'tiny': the quiet fast path
    expect(d.evaluated).toBe(6); // and the three below volume_spike's window guard
    expect(d.trackedChanges).toEqual([{ rule: 'cancel_rate_spike', id: 'spiky', quiet: false }, { rule: 'cancel_rate_spike', id: 'calm', quiet: false }]);
  });

  it('writes an unchanged non-breach row only once', () => {
    const first = decideMinute(input());
    const signatures = new Map(first.rows.map((r) => [r.key, r.sig]));
    const again = decideMinute(input({ signatures }));
    expect(again.rows.map((r) => r.e.merchantId)).toEqual(['spiky']); // breach rows carry fresh evidence every minute
  });

  it('suppresses the message in a replay, without Slack, and under a silence', () => {
    expect(decideMinute(input({ replay: true })).transitions[0].notification).toEqual({ status: 'suppressed', reason: 'replay', silenceId: null });
    expect(decideMinute(input({ slackEnabled: false })).transitions[0].notification).toMatchObject({ reason: 'slack not configured' });
    const silences = [{ id: '9', merchantId: 'spiky', rule: null, reason: 'known incident' }];
    expect(decideMinute(input({ silences })).transitions[0].notification).toEqual({ status: 'suppressed', reason: 'silenced: known incident', silenceId: '9' });
    expect(notificationFor({ rule: 'volume_drop', merchantId: 'spiky' }, false, true, [{ id: '1', merchantId: null, rule: 'cancel_rate_spike', reason: '' }]).status).toBe('pending');
  });

  it('counts clear minutes of a firing alert, then resolves it — also when the merchant went quiet', () => {
    const life = { firedAt: M - 30 * MINUTE, lastNotifiedAt: M - 30 * MINUTE, clearMinutes: 0 };
    const firing = new Map<string, FiringAlert>([[keyOf('cancel_rate_spike', 'calm'), { id: 'a1', rule: 'cancel_rate_spike', merchantId: 'calm', life }]]);
    const one = decideMinute(input({ firing }));
    expect(one.clearCounts).toEqual([{ alertId: 'a1', clearMinutes: 1 }]);
    expect(one.transitions.filter((x) => x.merchantId === 'calm')).toEqual([]);
    const gone = new Map(input().window);
    gone.delete('calm');
    const last = decideMinute(input({ window: gone, firing: new Map([[keyOf('cancel_rate_spike', 'calm'), { id: 'a1', rule: 'cancel_rate_spike', merchantId: 'calm', life: { ...life, clearMinutes: 4 } }]]) }));
    expect(last.transitions.find((x) => x.merchantId === 'calm')).toMatchObject({ kind: 'resolved', alertId: 'a1' });
    expect(last.nextFiring.get(keyOf('cancel_rate_spike', 'calm'))).toBeNull();
  });

  it('evaluates volume_drop for an eligible merchant that stopped entirely, not while ingestion lags', () => {
    const profile = new Float64Array(25).fill(0);
    for (let h = 0; h < 24; h++) profile[h] = 7 * 100_000_000; // 2.4B KRW a day
    const base = { ...input().baselines, totals: new Map([['big', t(0, 0, 7n * 2_400_000_000n)]]), profiles: new Map([['big', profile]]), eligible: new Set(['big']) };
    const d = decideMinute(input({ baselines: base }));
    expect(d.transitions.find((x) => x.rule === 'volume_drop')).toMatchObject({ kind: 'fired', merchantId: 'big' });
    const lagging = decideMinute(input({ baselines: base, ingestLagMs: 10 * MINUTE }));
    expect(lagging.transitions.find((x) => x.rule === 'volume_drop')).toBeUndefined();
    expect(lagging.rows.find((r) => r.e.merchantId === 'big')?.e).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/ingestion lags/) });
  });
});
