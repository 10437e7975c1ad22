/**
 * The evaluator against a real risk store (PostgreSQL) and Redis pub/sub, reading buckets through an in-memory
 * BucketReader (the evaluator's logic does not depend on the Redis layout; the aggregator's reader has its own tests).
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../lib/logger.ts';
import { dayStart, HOUR, MINUTE } from '../lib/time.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { Evaluator, type EvaluatorOptions } from './evaluator.ts';
import { alertsChannel, type AlertMessage } from '../lib/alert-message.ts';
import { defaultRules } from './rules/config.ts';
import { SlackSender } from './slack/sender.ts';
import { addHistory, riskStore } from './testing/fixtures.ts';
import { MemoryReader } from './testing/memory-reader.ts';
import { FakeSlack, waitFor } from '../test/harness/index.ts';

const T0 = Date.parse('2026-11-21T05:00:00Z'); // 14:00 in Seoul
const log = logger.child({ component: 'alerting-test' });
const LATENESS = 5000;

interface Rig { reader: MemoryReader; ev: Evaluator; db: pg.Pool; clock: { now: number }; messages: AlertMessage[]; close: () => Promise<void> }

async function rig(opts: Partial<EvaluatorOptions> = {}, reader = new MemoryReader()): Promise<Rig> {
  const db = await riskStore(await freshDatabase('risk'));
  const prefix = uniqueName('al');
  const redis = new Redis(services().REDIS_URL);
  const sub = new Redis(services().REDIS_URL);
  const messages: AlertMessage[] = [];
  await sub.subscribe(alertsChannel(prefix));
  sub.on('message', (_c, m) => messages.push(JSON.parse(m)));
  const clock = { now: T0 };
  const ev = new Evaluator({
    rules: defaultRules(), tz: 'Asia/Seoul', allowedLatenessMs: LATENESS, maxIngestLagMs: 120_000, replayAfterMs: 600_000,
    evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: prefix, slackEnabled: true, ...opts,
  }, { reader, db, redis, log, now: () => clock.now });
  return { reader, ev, db, clock, messages, close: async () => { await db.end(); redis.disconnect(); sub.disconnect(); } };
}

/** Closes minute M (watermark) with the wall clock 2 s after it closed, and evaluates until up to date. */
async function closeMinute(r: Rig, M: number, wallLagMs = 2000): Promise<void> {
  r.reader.wm = M + MINUTE + LATENESS;
  r.clock.now = r.reader.wm + wallLagMs;
  while (await r.ev.evaluateNext());
}

async function evaluation(db: pg.Pool, rule: string, merchantId: string) {
  return (await db.query('SELECT status, reason, evidence, minute FROM evaluations WHERE rule = $1 AND merchant_id = $2', [rule, merchantId])).rows[0];
}

async function transitions(db: pg.Pool) {
  return (await db.query(`SELECT t.id, t.kind, t.minute, t.replay, a.rule, a.merchant_id, a.state, n.status, n.reason
    FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id JOIN notifications n ON n.transition_id = t.id ORDER BY t.id`)).rows;
}

const normal = { approvals: 1000, cancels: 20, amount: 10_000_000n }; // 2% cancel rate

describe('cancel_rate_spike end to end', () => {
  let r: Rig;
  beforeAll(async () => { r = await rig(); });
  afterAll(async () => { await r.close(); });

  it('fires on a surge, stores evidence, notifies, publishes; resolves after 5 clear minutes', async () => {
    const M0 = T0 - 10 * MINUTE;
    addHistory(r.reader, 'c1', T0, normal);
    addHistory(r.reader, 'noisy', T0, normal);
    addHistory(r.reader, 'c2', T0, normal);
    r.reader.add('c1', M0 - 30 * MINUTE, { approvals: 60, cancels: 1 });
    r.reader.add('noisy', M0, { approvals: 10, cancels: 8 }); // 80%, but a small noisy merchant
    r.reader.add('newbie', M0, { approvals: 50, cancels: 20 }); // no history

    await closeMinute(r, M0);
    expect(await transitions(r.db)).toEqual([]);
    // Too little activity is what a missing row means (no row is written for the bulk of quiet merchants).
    expect(await evaluation(r.db, 'cancel_rate_spike', 'c1')).toBeUndefined();
    expect(await evaluation(r.db, 'cancel_rate_spike', 'noisy')).toBeUndefined();
    expect(await evaluation(r.db, 'cancel_rate_spike', 'newbie')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/too little history/) });

    r.reader.add('c1', M0 + MINUTE, { approvals: 30, cancels: 10 }); // window: 90 approvals, 11 cancels = 12% ≥ 2 × 2%
    await closeMinute(r, M0 + MINUTE);
    let ts = await transitions(r.db);
    expect(ts).toMatchObject([{ kind: 'fired', rule: 'cancel_rate_spike', merchant_id: 'c1', state: 'firing', replay: false, status: 'pending' }]);
    const ev = await evaluation(r.db, 'cancel_rate_spike', 'c1');
    expect(ev.status).toBe('breach');
    expect(ev.evidence).toMatchObject({ window: { approvals: 90, cancels: 11 }, baseline: { approvals: 7000, cancels: 140, rate: 0.02 }, threshold: 0.04 });

    r.reader.add('c1', M0 + 2 * MINUTE, { approvals: 600 }); // rate falls to 11/690 < 4%
    for (let i = 2; i <= 5; i++) await closeMinute(r, M0 + i * MINUTE);
    expect(await evaluation(r.db, 'cancel_rate_spike', 'c1')).toMatchObject({ status: 'clear' });
    expect((await transitions(r.db)).map((t) => t.kind)).toEqual(['fired']); // 4 clear minutes: still firing
    await closeMinute(r, M0 + 6 * MINUTE);
    ts = await transitions(r.db);
    expect(ts.map((t) => `${t.kind}:${t.state}`)).toEqual(['fired:resolved', 'resolved:resolved']);
    const alert = (await r.db.query('SELECT state, fired_at, resolved_at, rule_version FROM alerts')).rows[0];
    expect(alert).toMatchObject({ state: 'resolved', rule_version: defaultRules().version });
    expect(alert.fired_at.getTime()).toBe(M0 + MINUTE);
    expect(alert.resolved_at.getTime()).toBe(M0 + 6 * MINUTE);

    // Fan-out: one message per transition, after the commit, with the transition id as eventId.
    await waitFor(() => r.messages.length === 2);
    expect(r.messages.map((m) => [m.eventId, m.transition, m.alert.state])).toEqual([[Number(ts[0].id), 'fired', 'firing'], [Number(ts[1].id), 'resolved', 'resolved']]);
    expect(r.messages[0].alert).toMatchObject({ rule: 'cancel_rate_spike', merchantId: 'c1', firedAt: new Date(M0 + MINUTE).toISOString(), resolvedAt: null });

    // A merchant whose activity fades gets its row back to "too little activity" (without stale evidence).
    r.reader.add('c2', M0 + 7 * MINUTE, { approvals: 40, cancels: 8 }); // 8 where 0.8 were expected: no luck
    await closeMinute(r, M0 + 7 * MINUTE);
    expect(await evaluation(r.db, 'cancel_rate_spike', 'c2')).toMatchObject({ status: 'breach' });
    await closeMinute(r, M0 + 67 * MINUTE); // caught up minute by minute: c2's surge leaves the window
    expect(await evaluation(r.db, 'cancel_rate_spike', 'c2')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/too little activity/), evidence: null });

    // Progress is durable: a new evaluator on the same store continues after the last minute, not from scratch.
    const progress = (await r.db.query('SELECT last_minute FROM evaluator_progress')).rows[0].last_minute.getTime();
    expect(progress).toBe(M0 + 67 * MINUTE);
  });
});

describe('volume_drop end to end', () => {
  const big = { approvals: 2400, cancels: 0, amount: 2_400_000_000n }; // 100M KRW per hour

  function bigReader(): MemoryReader {
    const reader = new MemoryReader();
    addHistory(reader, 'silent', T0, big);
    addHistory(reader, 'steady', T0, big);
    addHistory(reader, 'smallish', T0, { approvals: 100, cancels: 0, amount: 500_000_000n });
    const today = dayStart(T0, 'Asia/Seoul');
    for (let t = today; t < T0; t += HOUR) reader.add('steady', t, { approvals: 100, approvedAmount: 100_000_000n });
    return reader;
  }

  it('a silent big merchant fires; a steady one and a small one do not', async () => {
    const r = await rig({}, bigReader());
    try {
      await closeMinute(r, T0);
      expect((await transitions(r.db)).map((t) => `${t.kind} ${t.rule} ${t.merchant_id}`)).toEqual(['fired volume_drop silent']);
      const e = await evaluation(r.db, 'volume_drop', 'silent');
      expect(e.evidence).toMatchObject({ window: { approvedAmount: '0' }, baseline: { sameTimeAverage: String(1_400_000_000 + Math.round(100_000_000 / 60)) } });
      expect(await evaluation(r.db, 'volume_drop', 'steady')).toMatchObject({ status: 'clear' });
      expect(await evaluation(r.db, 'volume_drop', 'smallish')).toBeUndefined(); // never eligible: no row
    } finally { await r.close(); }
  });

  it('a lagging pipeline is not a sales collapse', async () => {
    const r = await rig({}, bigReader());
    try {
      await closeMinute(r, T0, 5 * MINUTE);
      expect(await transitions(r.db)).toEqual([]);
      expect(await evaluation(r.db, 'volume_drop', 'silent')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/ingestion lags the wall clock by more than 120 s/) });
    } finally { await r.close(); }
  });

  it('the first minutes of the day are not evaluated', async () => {
    const r = await rig({}, bigReader());
    try {
      await closeMinute(r, dayStart(T0, 'Asia/Seoul') + 10 * MINUTE);
      expect(await transitions(r.db)).toEqual([]);
      expect(await evaluation(r.db, 'volume_drop', 'silent')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/first 30 minutes/) });
    } finally { await r.close(); }
  });
});

describe('volume_spike ahead of the close', () => {
  it('reads a new candidate\'s history once the minute has ended, so its close reads none', async () => {
    const reader = new MemoryReader();
    const asked: string[] = [];
    const series = reader.series.bind(reader);
    reader.series = (id, from, to, step) => { asked.push(id); return series(id, from, to, step); };
    const r = await rig({}, reader);
    try {
      addHistory(reader, 'jump', T0, { approvals: 240, cancels: 0, amount: 24_000_000n }); // 1M KRW an hour
      await closeMinute(r, T0 - MINUTE);
      expect(asked).not.toContain('jump');
      reader.add('jump', T0, { approvals: 200, approvedAmount: 50_000_000n }); // ≥ the 10M guard: a candidate
      reader.wm = T0 + MINUTE; // the minute has ended, not closed (lateness)
      expect(await r.ev.evaluateNext()).toBeNull();
      expect(asked.filter((id) => id === 'jump')).toHaveLength(1);
      await closeMinute(r, T0);
      expect(asked.filter((id) => id === 'jump')).toHaveLength(1);
      expect((await transitions(r.db)).map((t) => `${t.kind} ${t.rule} ${t.merchant_id}`)).toEqual(['fired volume_spike jump']);
    } finally { await r.close(); }
  });
});

describe('replay and silences', () => {
  it('history evaluated while catching up is stored with replay = true and sends nothing', async () => {
    const r = await rig();
    const slack = await new FakeSlack().start();
    try {
      const M0 = T0 - 10 * MINUTE;
      addHistory(r.reader, 'c1', T0, normal);
      r.reader.add('c1', M0 + MINUTE, { approvals: 30, cancels: 10 });
      await r.db.query('INSERT INTO evaluator_progress (name, last_minute) VALUES ($1, $2)', ['default', new Date(M0 - MINUTE)]);
      await closeMinute(r, M0 + 3 * MINUTE, 2 * 86_400_000); // the wall clock is two days ahead: this is history
      expect(await transitions(r.db)).toMatchObject([{ kind: 'fired', replay: true, status: 'suppressed', reason: 'replay' }]);
      expect((await r.db.query('SELECT replay FROM alerts')).rows).toEqual([{ replay: true }]);
      const sender = new SlackSender({ webhookUrl: slack.url, publicUrl: 'http://x', minIntervalMs: 0, digestOver: 3, maxAttempts: 3, timeoutMs: 5000 }, { db: r.db, riskPgUrl: '', log });
      expect(await sender.sendOnce()).toBe(false);
      expect(slack.received).toEqual([]);
    } finally { await r.close(); await slack.stop(); }
  });

  it('a silenced merchant or rule gets its alert stored and its notification suppressed', async () => {
    const r = await rig();
    try {
      const M0 = T0 - 10 * MINUTE;
      for (const m of ['muted', 'other-rule-muted', 'loud']) {
        addHistory(r.reader, m, T0, normal);
        r.reader.add(m, M0, { approvals: 30, cancels: 10 });
      }
      await r.db.query(`INSERT INTO silences (merchant_id, rule, starts_at, ends_at, reason) VALUES
        ('muted', NULL, now(), now() + interval '1 hour', 'maintenance'),
        ('other-rule-muted', 'volume_drop', now(), now() + interval '1 hour', ''),
        ('loud', NULL, now() - interval '2 hours', now() - interval '1 minute', 'expired')`);
      await closeMinute(r, M0);
      const ts = await transitions(r.db);
      const by = Object.fromEntries(ts.map((t) => [t.merchant_id, `${t.kind} ${t.status} ${t.reason ?? ''}`.trim()]));
      expect(by).toEqual({ muted: 'fired suppressed silenced: maintenance', 'other-rule-muted': 'fired pending', loud: 'fired pending' });
    } finally { await r.close(); }
  });
});

describe('a Redis failover while a minute is read', () => {
  /** A reader whose next read meets a failover: today's volume of `steady` is gone (rolled back) and the master changed. */
  class FailoverReader extends MemoryReader {
    epoch = 'master-a';
    armed = false;
    reads = 0;
    async stateEpoch(): Promise<string> { return this.epoch; }
    #strike(): void {
      if (!this.armed) return;
      this.armed = false;
      this.epoch = 'master-b';
      this.add('steady', dayStart(T0, 'Asia/Seoul'), { approvals: -100, approvedAmount: -1_000_000_000n });
    }
    override async totals(ids: string[], from: number, to: number, activeOnly = false) { this.reads++; this.#strike(); return super.totals(ids, from, to, activeOnly); }
    override async totalsByMerchant(from: number, to: number) { this.reads++; this.#strike(); return super.totalsByMerchant(from, to); }
  }

  it('decides nothing on the rolled-back state: no alert fires, progress stays; the minute is evaluated once the state is whole again', async () => {
    const reader = new FailoverReader();
    addHistory(reader, 'steady', T0, { approvals: 2400, cancels: 0, amount: 2_400_000_000n });
    const today = dayStart(T0, 'Asia/Seoul');
    for (let t = today; t < T0; t += HOUR) reader.add('steady', t, { approvals: 100, approvedAmount: 100_000_000n });
    const r = await rig({}, reader);
    try {
      await closeMinute(r, T0 - MINUTE);
      expect(await transitions(r.db)).toEqual([]);
      const before = (await r.db.query('SELECT last_minute FROM evaluator_progress')).rows[0].last_minute.getTime();

      reader.armed = true;
      reader.wm = T0 + MINUTE + LATENESS;
      r.clock.now = reader.wm + 2000;
      await expect(r.ev.evaluateNext()).rejects.toThrow(/moved back/);
      expect(reader.reads).toBeGreaterThan(0);
      // the rolled-back read would have fired volume_drop (today's volume gone): nothing was committed
      expect(await transitions(r.db)).toEqual([]);
      expect((await r.db.query('SELECT last_minute FROM evaluator_progress')).rows[0].last_minute.getTime()).toBe(before);

      // the aggregator re-consumed: the state is whole again under the new master; the minute is evaluated on it
      reader.add('steady', today, { approvals: 100, approvedAmount: 1_000_000_000n });
      while (await r.ev.evaluateNext());
      expect(await transitions(r.db)).toEqual([]);
      expect((await r.db.query('SELECT last_minute FROM evaluator_progress')).rows[0].last_minute.getTime()).toBe(T0);
      expect(await evaluation(r.db, 'volume_drop', 'steady')).toMatchObject({ status: 'clear' });
    } finally { await r.close(); }
  });
});
