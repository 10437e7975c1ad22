/**
 * Backtests against real Redis buckets (written through the aggregator's apply path) and a real risk store:
 *
 * - live equals backtest: hours of generated history with injected anomalies — cancel surges (a strong one, a weak
 *   one, one on a hot merchant long enough to be re-notified, one firing before the period and resolving inside it
 *   with clear minutes already counted at its start), a ≥ 1B KRW merchant that stops and one whose volume drops, a
 *   local midnight inside the period, minutes where ingestion lagged — evaluated minute by minute by the live
 *   evaluator; a backtest of the same rules over a period inside gives exactly the live alerts.
 * - a sum beyond what doubles hold exactly (a 2^60 KRW minute) moves the backtest to bigint sums mid-period, with the
 *   same alerts and evidence.
 * - a candidate with a higher multiplier drops the weaker surge and keeps the strong one.
 * - minutes the minute tier no longer holds are rebuilt from the retained topic (the same events, late rows and
 *   corrections included) and the backtest is still exactly live.
 * - a shadow version (that candidate, run beside the live rules from a minute inside the period) stores would-be
 *   alerts equal to a backtest of it over the same minutes.
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TopicMinutes } from '../../aggregator/index.ts';
import { BucketWriter, createBucketReader, hasMinuteTotals, type BucketReader } from '../../aggregator/store/index.ts';
import { createTopic, testKafka, testProducer } from '../../aggregator/testing.ts';
import { referenceMapping } from '../../lib/mapping.ts';
import { logger } from '../../lib/logger.ts';
import { dayStart, hourStart, iso, MINUTE } from '../../lib/time.ts';
import { freshDatabase, services, uniqueName } from '../../test/harness/services.ts';
import { Evaluator } from '../evaluator.ts';
import { defaultRules, parseRules } from '../rules/config.ts';
import { createDraft, seedRules } from '../risk-store/index.ts';
import { currentShadow, shadowAlerts, startShadow } from '../risk-store/index.ts';
import { firingAt, liveAlerts, liveIngestLags } from '../risk-store/index.ts';
import { finishedBacktest, riskStore } from '../testing/fixtures.ts';
import { runBacktest } from './engine.ts';
import { BacktestRunner } from './jobs.ts';
import { cancelBacktest, getBacktest, queueBacktest } from '../risk-store/index.ts';

const log = logger.child({ component: 'backtest-test' });
const LATENESS = 5000;
const PARTITIONS = 4;
const HOT_SHARDS = 2;

const N = Math.floor(Date.now() / MINUTE) * MINUTE - 5 * MINUTE;
const B0 = N - 300 * MINUTE; // backtest period [B0, B1)
const B1 = N - 10 * MINUTE;
const L0 = B0 - 80 * MINUTE; // the live evaluator runs from L0
const DATA0 = L0 - 70 * MINUTE; // minute-level data from here; 10-minute history before
/** A local midnight inside the period: the zone is chosen so that this UTC hour is 00:00. */
const MIDNIGHT = hourStart(N - 150 * MINUTE);
const h = new Date(MIDNIGHT).getUTCHours();
const TZ = h === 0 ? 'UTC' : h <= 12 ? `Etc/GMT+${h}` : `Etc/GMT-${24 - h}`;
/** Minutes the live evaluator saw ingestion lagging (200 s): volume_drop cannot tell then. */
const LAGGING = new Set(Array.from({ length: 9 }, (_, i) => MIDNIGHT + (25 + i) * MINUTE));

const SURGE_STRONG = B0 + 40 * MINUTE; // +8 cancels/min for 20 minutes
const SURGE_WEAK = B0 + 50 * MINUTE; // +1 cancel/min for 30 minutes
const SURGE_HOT = B0 - 40 * MINUTE; // +15 cancels/min for 90 minutes on a hot merchant
const SPIKE = B0 - 62 * MINUTE; // 50 cancels in one minute: fires before B0, clear 2 minutes at B0, resolves at B0+2
const STOP = MIDNIGHT - 60 * MINUTE; // a big merchant stops
const LATE_SURGE = B0 + 10 * MINUTE; // cancels committed hours later (before the rebuild test's horizon)
const BUST = B0 + 120 * MINUTE; // a bust-out: +3M KRW a minute for 30 minutes (volume_spike)
const SHADOW_FROM = B0 + 20 * MINUTE; // the shadow version (×4) runs from here
const STRICT = parseRules({ cancel_rate_spike: { multiplier: 4 } });

function writeHistory(w: BucketWriter): void {
  let n = 0;
  // Before DATA0: one slot per 10 minutes with the same rates (hour and day tiers are what the baselines read).
  for (let t = dayStart(N, TZ) - 9 * 86_400_000; t < DATA0; t += 10 * MINUTE) {
    for (let k = 0; k < 5; k++) {
      for (const m of ['n1', 'n2', 'n3', 'weak', 'strong', 'spike', 'bust']) w.approval(m, 20_000, t + k * 1000);
      w.approval('big', 1_500_000, t + k * 1000);
      w.approval('stop', 1_500_000, t + k * 1000);
      w.approval('drop', 1_500_000, t + k * 1000);
    }
    for (let k = 0; k < 50; k++) w.approval('hot', 20_000, t + k * 100);
    if (n % 10 === 0) for (const m of ['n1', 'n2', 'n3', 'weak', 'strong', 'spike']) w.cancel(m, 20_000, t + 6000);
    w.cancel('hot', 20_000, t + 7000);
    n++;
  }
  // Minute level from DATA0 to N.
  for (let t = DATA0; t < N; t += MINUTE) {
    const i = (t - DATA0) / MINUTE;
    for (let k = 0; k < 10; k++) for (const m of ['n1', 'n2', 'n3', 'weak', 'strong', 'spike']) w.approval(m, 20_000, t + k * 1000);
    if (i % 5 === 0) for (const m of ['n1', 'n2', 'n3', 'weak', 'strong', 'spike']) w.cancel(m, 20_000, t + 20_000);
    for (let k = 0; k < 100; k++) w.approval('hot', 20_000, t + k * 300);
    for (let k = 0; k < 2; k++) w.cancel('hot', 20_000, t + 40_000 + k);
    for (let k = 0; k < 5; k++) {
      w.approval('big', 150_000, t + k * 1000);
      if (t < STOP) w.approval('stop', 150_000, t + k * 1000);
      if (t < MIDNIGHT || k < 2) w.approval('drop', t < MIDNIGHT ? 150_000 : 75_000, t + k * 1000); // 20% of usual since midnight
    }
    const inRange = (s: number, minutes: number) => t >= s && t < s + minutes * MINUTE;
    w.approval('bust', 20_000, t + 1000);
    if (inRange(BUST, 30)) for (let k = 0; k < 10; k++) w.approval('bust', 300_000, t + 2000 + k);
    if (inRange(SURGE_STRONG, 20)) for (let k = 0; k < 8; k++) w.cancel('strong', 20_000, t + 30_000 + k);
    if (inRange(SURGE_WEAK, 30)) w.cancel('weak', 20_000, t + 30_000);
    if (inRange(SURGE_HOT, 90)) for (let k = 0; k < 15; k++) w.cancel('hot', 20_000, t + 50_000 + k);
    if (t === SPIKE) for (let k = 0; k < 50; k++) w.cancel('spike', 20_000, t + 30_000 + k);
  }
  // Late rows and a correction, committed hours after their transaction time.
  for (let k = 0; k < 3; k++) w.cancel('strong', 20_000, SURGE_STRONG + MINUTE + k, iso(N - 20 * MINUTE));
  for (let k = 0; k < 30; k++) w.cancel('n2', 20_000, LATE_SURGE + k * 100, iso(N - 20 * MINUTE)); // fires n2, known only late
  w.cdc.change('public.payments', 'delete', null,
    { payment_id: '999999999', merchant_id: 'n1', amount: '20000', approved_at: iso(B0 + 100 * MINUTE + 7000) }, iso(N - 15 * MINUTE));
  w.approval('n1', 20_000, B0 + 100 * MINUTE + 7000, iso(B0 + 100 * MINUTE + 8000)); // (the row deleted above)
}

describe('backtests', () => {
  let redis: Redis;
  let reader: BucketReader;
  let db: pg.Pool;
  let runner: BacktestRunner;
  let shadowId: string;
  let topic: string;
  let prefix: string;

  beforeAll(async () => {
    redis = new Redis(services().REDIS_URL);
    prefix = uniqueName('bt');
    const w = new BucketWriter(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ, hot: new Set(['hot']) });
    writeHistory(w);
    // The same change events on a topic, as the cdc would have published them (the rebuild's source).
    topic = uniqueName('bt_topic');
    const kafka = testKafka(services().KAFKA_BROKERS);
    await createTopic(kafka, topic, PARTITIONS);
    const producer = testProducer(kafka);
    await producer.connect();
    const events = [...w.cdc.queue];
    for (let i = 0; i < events.length; i += 5000) {
      await producer.send({ topic, acks: -1, messages: events.slice(i, i + 5000).map((k) => ({ key: k.key, value: k.value, partition: k.partition })) });
    }
    await producer.disconnect();
    await w.flush();
    reader = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ });
    db = await riskStore(await freshDatabase('risk'));

    await seedRules(db, defaultRules());
    const strict = await createDraft(db, { cancel_rate_spike: { multiplier: 4 } }, 'stricter', 'test');

    // The live evaluator, minute by minute from L0 to B1, the watermark closing one minute at a time.
    let wm = L0 + MINUTE + LATENESS;
    const clock = { now: wm + 2000 };
    const live: BucketReader = { ...reader, watermark: async () => wm };
    const ev = new Evaluator({
      rules: defaultRules(), tz: TZ, allowedLatenessMs: LATENESS, maxIngestLagMs: 120_000, replayAfterMs: 600_000,
      evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: prefix, slackEnabled: false,
    }, { reader: live, db, redis: null, log, now: () => clock.now });
    for (let M = L0; M < B1; M += MINUTE) {
      if (M === SHADOW_FROM) {
        await startShadow(db, strict.version, 'test');
        shadowId = (await currentShadow(db))!.id;
      }
      wm = M + MINUTE + LATENESS;
      clock.now = wm + (LAGGING.has(M) ? 200_000 : 2000);
      const r = await ev.evaluateNext();
      expect(r?.minute).toBe(M);
    }
    runner = new BacktestRunner({ tz: TZ, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 }, { reader, db, log, liveBusy: () => false });
  }, 600_000);

  afterAll(async () => {
    await db?.end();
    redis?.disconnect();
  });

  const key = (a: { rule: string; merchantId: string; firedAt: string | number; resolvedAt: string | number | null }) =>
    `${a.rule} ${a.merchantId} ${iso(new Date(a.firedAt).getTime())} ${a.resolvedAt === null ? 'firing' : iso(new Date(a.resolvedAt).getTime())}`;

  const backtest = (config = defaultRules(), from = B0, to = B1) => finishedBacktest(db, runner, config, from, to);

  it('a backtest of the live rules over minutes the live evaluator evaluated gives exactly the live alerts', async () => {
    const live = (await liveAlerts(db, B0, B1, false)).map(key).sort();
    // The scenarios happened live: both rules, the hot merchant, the carried spike, the stop after midnight.
    expect(live).toEqual(expect.arrayContaining([
      expect.stringMatching(/^cancel_rate_spike strong /), expect.stringMatching(/^cancel_rate_spike weak /),
      expect.stringMatching(/^cancel_rate_spike hot /), `cancel_rate_spike spike ${iso(SPIKE)} ${iso(B0 + 2 * MINUTE)}`,
      `volume_drop stop ${iso(MIDNIGHT + 34 * MINUTE)} firing`, `volume_drop drop ${iso(MIDNIGHT + 34 * MINUTE)} firing`,
      expect.stringMatching(new RegExp(`^volume_spike bust ${iso(BUST + 2 * MINUTE)} \\d`)),
    ]));
    expect(live.filter((k) => /^cancel_rate_spike (n1|n3|big) /.test(k))).toEqual([]);
    expect(live).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^cancel_rate_spike n2 ${iso(LATE_SURGE)} `))]));
    const renotified = await db.query(`SELECT count(*)::int AS n FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id
      WHERE t.kind = 'renotified' AND a.merchant_id = 'hot' AND t.minute >= $1 AND t.minute < $2`, [new Date(B0), new Date(B1)]);
    expect(renotified.rows[0].n).toBeGreaterThan(0);

    const result = await backtest();
    expect(result.alerts.map(key).sort()).toEqual(live);
    expect(result.vsLive).toMatchObject({ exact: true, onlyBacktest: [], onlyLive: [] });
    expect(result.alerts.find((a) => a.merchantId === 'hot')!.renotified).toBeGreaterThan(0);
    expect(result.minutes).toBe((B1 - B0) / MINUTE);
  });

  it('with a sum beyond what doubles hold exactly, the bigint sums give the same alerts', async () => {
    // A merchant with 2^60 KRW in one minute inside the period: the window's sums leave the doubles there (the
    // slices still needed become bigint totals again) and the rest of the period runs on bigint sums.
    const GIANT = B0 + 100 * MINUTE;
    let giantRead = false;
    const minutes = async (lo: number, hi: number) => {
      if (!hasMinuteTotals(reader)) throw new Error('the bucket reader reads minute totals');
      const out = await reader.minuteTotals(lo, hi);
      if (GIANT >= lo && GIANT < hi) {
        out.set(GIANT, new Map(out.get(GIANT) ?? []).set('giant', { approvals: 1, approvedAmount: 2n ** 60n, cancels: 0, canceledAmount: 0n }));
        giantRead = true;
      }
      return out;
    };
    const [initial, ingestLags] = await Promise.all([firingAt(db, B0), liveIngestLags(db, 'default', B0, B1)]);
    const run = (m?: typeof minutes) => runBacktest({ rules: defaultRules(), from: B0, to: B1, tz: TZ, maxIngestLagMs: 120_000, reader, log, initial, ingestLags, minutes: m });
    const doubles = await run();
    const bigints = await run(minutes);
    expect(giantRead).toBe(true);
    expect(bigints.alerts.map(key).sort()).toEqual(doubles.alerts.map(key).sort());
    expect(bigints.alerts.map((a) => a.evidence)).toEqual(doubles.alerts.map((a) => a.evidence));
    expect(doubles.alerts.map(key).sort()).toEqual((await liveAlerts(db, B0, B1, false)).map(key).sort());
  });

  it('a period starting at other minutes matches too (state taken over mid-alert)', async () => {
    const from = SURGE_STRONG + 5 * MINUTE;
    const to = MIDNIGHT + 40 * MINUTE;
    const result = await backtest(defaultRules(), from, to);
    expect(result.alerts.map(key).sort()).toEqual((await liveAlerts(db, from, to, false)).map(key).sort());
    expect(result.vsLive.exact).toBe(true);
  });

  it('a candidate with a higher multiplier drops the weaker surge and keeps the strong one', async () => {
    const result = await backtest(STRICT);
    const cancels = result.alerts.filter((a) => a.rule === 'cancel_rate_spike').map((a) => a.merchantId);
    expect(cancels).toContain('strong');
    expect(cancels).toContain('hot');
    expect(cancels).not.toContain('weak');
    expect(result.vsLive.onlyLive.map((a) => a.merchantId)).toContain('weak');
    expect(result.vsLive.exact).toBe(false);
    expect(result.summary.cancel_rate_spike.fired).toBeLessThan(result.summary.cancel_rate_spike.live.fired);
  });

  it('minutes older than the minute tier are rebuilt from the topic, and the backtest is still exactly live', async () => {
    // A reader whose minute tier holds only the last 4 hours: the period's first hours come from the topic.
    const short = createBucketReader(redis, { prefix, partitions: PARTITIONS, hotShards: HOT_SHARDS, tz: TZ, minuteTtlMs: 4 * 3_600_000 });
    expect(short.minuteHorizon()).toBeGreaterThan(B0 + 60 * MINUTE);
    const streams: TopicMinutes[] = [];
    const fromTopic = new BacktestRunner({ tz: TZ, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 }, {
      reader: short, db, log, liveBusy: () => false,
      topicMinutes: async (lo, hi) => {
        const s = await TopicMinutes.open({ kafka: testKafka(services().KAFKA_BROKERS), topic, mapping: referenceMapping }, lo, hi);
        streams.push(s);
        return s;
      },
    });
    const result = await finishedBacktest(db, fromTopic, defaultRules(), B0, B1);
    expect(streams).toHaveLength(1);
    expect(streams[0].changes).toBeGreaterThan(1000);
    expect(result.alerts.map(key).sort()).toEqual((await liveAlerts(db, B0, B1, false)).map(key).sort());
    expect(result.vsLive.exact).toBe(true);
    // Without a topic to rebuild from, the job says which period is possible instead of approximating.
    const none = new BacktestRunner({ tz: TZ, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 }, { reader: short, db, log, liveBusy: () => false });
    const id2 = await queueBacktest(db, { config: defaultRules(), version: null, from: B0, to: B1, actor: 'test' });
    expect(await none.runOne()).toBe(true);
    expect(await getBacktest(db, id2)).toMatchObject({ status: 'failed', error: expect.stringMatching(/have left the minute tier .* start the backtest at/) });
  });

  it("a shadow version's would-be alerts equal a backtest of it over the same minutes; nothing live changes", async () => {
    expect(await currentShadow(db)).toMatchObject({ firstMinute: new Date(SHADOW_FROM), lastMinute: new Date(B1 - MINUTE) });
    const shadow = await shadowAlerts(db, shadowId);
    const result = await backtest(STRICT, SHADOW_FROM, B1);
    expect(shadow.map(key).sort()).toEqual(result.alerts.map(key).sort());
    expect(shadow.map((a) => a.merchantId)).toContain('strong');
    expect(shadow.filter((a) => a.rule === 'cancel_rate_spike' && !a.carried).map((a) => a.merchantId)).not.toContain('weak');
    // The live alerts are those of the active rules only (the backtest of them above matched them exactly).
    expect((await liveAlerts(db, SHADOW_FROM, B1, false)).map((a) => a.merchantId)).toContain('weak');
  });

  it('queues several, runs them oldest first, and stops a cancelled one', async () => {
    const a = await queueBacktest(db, { config: defaultRules(), version: null, from: B0, to: B1, actor: 'test' });
    const b = await queueBacktest(db, { config: defaultRules(), version: null, from: B0, to: B0 + 30 * MINUTE, actor: 'test' });
    expect(await cancelBacktest(db, a, 'analyst-1')).toBe(true);
    expect(await getBacktest(db, a)).toMatchObject({ status: 'failed', error: 'cancelled by analyst-1' });
    expect(await runner.runOne()).toBe(true);
    expect(await getBacktest(db, b)).toMatchObject({ status: 'done' });
    expect(await runner.runOne()).toBe(false);
  });
});
