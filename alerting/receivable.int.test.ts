/**
 * The receivable rule end to end in the evaluator: buckets and payouts in Redis (the bucket store's writer, the
 * aggregator's plan and Lua apply), the real reader, the risk store in PostgreSQL. A merchant whose cancels since
 * its last payout exceed its sales by ≥ 30M KRW fires with its exposure recorded; merchant_exposure lists it and
 * alerts sort by it; a payout that settles those cancels brings it to 0 and the alert resolves 5 minutes later. After
 * a restart, a merchant left unread at the first minute is read while the evaluator waits for the next one.
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, createBucketReader } from '../aggregator/store/index.ts';
import { logger } from '../lib/logger.ts';
import { MINUTE, HOUR, minuteStart } from '../lib/time.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { Evaluator } from './evaluator.ts';
import { listAlerts, topExposures } from './risk-store/index.ts';
import { defaultRules } from './rules/config.ts';
import { riskStore } from './testing/fixtures.ts';

const log = logger.child({ component: 'receivable-test' });
const TZ = 'Asia/Seoul';

describe('rule receivable', () => {
  let db: pg.Pool, redis: Redis, writer: BucketWriter, ev: Evaluator;
  const clock = { now: 0 };
  const T = minuteStart(Date.now()) - 20 * MINUTE;

  let start: () => Evaluator;
  beforeAll(async () => {
    db = await riskStore(await freshDatabase('recv'));
    redis = new Redis(services().REDIS_URL);
    const prefix = uniqueName('recv');
    const o = { prefix, partitions: 4, hotShards: 4, tz: TZ };
    writer = new BucketWriter(redis, o);
    const reader = createBucketReader(redis, o);
    start = () => new Evaluator({
      rules: defaultRules(), tz: TZ, allowedLatenessMs: 5000, maxIngestLagMs: 3_600_000, replayAfterMs: 3_600_000,
      evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: prefix, slackEnabled: false,
    }, { reader, db, redis: null, log, now: () => clock.now, settlement: { kind: 'payouts' } });
    ev = start();
  });
  afterAll(async () => { await db.end(); redis.disconnect(); });

  /** Closes minute M: every partition's watermark past its end, the clock 2 s later; evaluates what is due. */
  async function close(M: number) {
    writer.cdc.heartbeats(new Date(M + MINUTE + 5000).toISOString());
    await writer.flush();
    clock.now = M + MINUTE + 7000;
    while (await ev.evaluateNext());
  }
  const alertOf = async (m: string) => (await db.query(`SELECT state, exposure_at_fire FROM alerts WHERE rule = 'receivable' AND merchant_id = $1`, [m])).rows;

  it('fires at ≥ 30M KRW owed with the exposure at firing, ranks the merchant, resolves once a payout settles it', async () => {
    // owes: 10M sold and paid out, then 45M of cancels since (of sales settled long ago), 5M new sales
    writer.approval('m1', 10_000_000, T - 5 * HOUR);
    writer.payout('m1', 10_000_000, T - 3 * HOUR, T - 2 * HOUR);
    writer.cancel('m1', 45_000_000, T - 30 * MINUTE);
    writer.approval('m1', 5_000_000, T - 20 * MINUTE);
    // owes too little to fire (20M), and one that owes nothing
    writer.payout('m2', 1, T - 3 * HOUR, T - 2 * HOUR);
    writer.cancel('m2', 20_000_000, T - 10 * MINUTE);
    writer.approval('m3', 9_000_000, T - 10 * MINUTE);
    writer.cancel('m3', 1_000_000, T - 9 * MINUTE);
    await close(T);
    expect((await alertOf('m1')).map((a) => a.state)).toEqual(['firing']);
    const [a] = await alertOf('m1');
    expect(a.exposure_at_fire).toMatchObject({ merchantId: 'm1', settledThrough: new Date(T - 3 * HOUR).toISOString(), approvedSinceSettled: '5000000', canceledSinceSettled: '45000000', receivable: '40000000' });
    expect(await alertOf('m2')).toEqual([]);
    const top = await topExposures(db, 10);
    expect(top.items.map((e) => [e.merchantId, e.receivable])).toEqual([['m1', '40000000'], ['m2', '20000000']]);
    const sorted = await listAlerts(db, { limit: 10, sort: 'receivable' });
    expect(sorted.items.map((x) => [x.merchantId, x.receivableNow, x.exposureAtFiring?.receivable])).toEqual([['m1', '40000000', '40000000']]);

    // a payout covering the cancels, paid at T+3m: from then on m1 owes nothing; 5 clear minutes resolve the alert
    writer.payout('m1', 0, T - 5 * MINUTE, T + 3 * MINUTE);
    for (let k = 1; k <= 3; k++) await close(T + k * MINUTE);
    expect((await alertOf('m1')).map((x) => x.state)).toEqual(['firing']);
    expect((await topExposures(db, 10)).items.map((e) => e.merchantId)).toEqual(['m2']);
    for (let k = 4; k <= 8; k++) await close(T + k * MINUTE);
    expect((await alertOf('m1')).map((x) => x.state)).toEqual(['resolved']);
  }, 60_000);

  it('after a restart, a merchant that came to owe meanwhile without a cancel in the last hour is read while the evaluator waits, and fires', async () => {
    // written while no evaluator ran: q1's buyers canceled 40M of sales paid out long ago, three hours back
    writer.approval('q1', 1_000_000, T - 6 * HOUR);
    writer.payout('q1', 1_000_000, T - 5 * HOUR, T - 4 * HOUR);
    writer.cancel('q1', 40_000_000, T - 3 * HOUR);
    ev = start(); // the restarted evaluator: its first minute reads only what a cancel in the last hour or a debt names
    const T2 = T + 9 * MINUTE;
    await close(T2); // … then, waiting for the next minute to end, it reads the merchants left unread
    expect(await alertOf('q1')).toEqual([]);
    await close(T2 + MINUTE);
    const [a] = await alertOf('q1');
    expect(a?.state).toBe('firing');
    expect(a.exposure_at_fire).toMatchObject({ merchantId: 'q1', receivable: '40000000' });
  }, 60_000);
});
