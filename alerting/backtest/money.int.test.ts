/**
 * Money in backtests, against real Redis buckets and payouts (the bucket store's writer and apply path) and a real
 * risk store: the live evaluator judges receivable minute by minute while each minute's facts arrive (payout rows
 * are written ahead, as scheduled payouts are); a backtest of the same rules gives exactly the live alerts,
 * receivable included (alerts carried into the period, resolved by a payout that moves the settled-through time,
 * resolved by new sales), and each alert's money is the hand-computed one:
 *
 * - a: paid out through B0−2h; cancels 40M at B0+10m (fires: 40M), 10M more at B0+20m (peak 50M), sales 70M at B0+40m
 *   (resolves), 5M at B0+70m; payouts 20M (paid B0+60m) and 5M (paid B0+90m) after firing, 7M after the period:
 *   withheld 25M, covered min(50M, 25M) = 25M.
 * - b: cancels 35M at B0+5m (fires), sales 50M at B0+30m; a 15M payout at B0+70m: withheld 15M, covered 15M — and
 *   analysts closed its live alert as a false positive: 15M held for nothing.
 * - e: cancels 33M at B0+50m (fires); a payout of 0 settling them at B0+57m resolves it: withheld 0, covered 0.
 * - f: cancels 31M at B0+80m (fires), sales 80M at B0+85m; a 49M payout at B0+100m: withheld 49M, covered 31M (the
 *   peak).
 * - c and d fire before the period (carried, no money); d resolves inside it when a payout settles its cancels.
 *
 * A shadow version with a 45M threshold, started inside the period, stores would-be alerts equal to a backtest of it.
 */
import { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BucketWriter, createBucketReader, type BucketReader } from '../../aggregator/store/index.ts';
import { logger } from '../../lib/logger.ts';
import { HOUR, iso, MINUTE } from '../../lib/time.ts';
import { freshDatabase, services, uniqueName } from '../../test/harness/services.ts';
import { Evaluator } from '../evaluator.ts';
import { defaultRules, parseRules } from '../rules/config.ts';
import { applyTriage, createDraft, currentShadow, liveAlerts, seedRules, shadowAlerts, startShadow } from '../risk-store/index.ts';
import { finishedBacktest, riskStore } from '../testing/fixtures.ts';
import { BacktestRunner } from './jobs.ts';

const log = logger.child({ component: 'backtest-money-test' });
const TZ = 'Asia/Seoul';
const LATENESS = 5000;
const M_ = 1_000_000;

const N = Math.floor(Date.now() / MINUTE) * MINUTE - 5 * MINUTE;
const B1 = N - 5 * MINUTE;
const B0 = B1 - 120 * MINUTE; // the backtest period [B0, B1)
const L0 = B0 - 30 * MINUTE; // the live evaluator runs from L0
const SHADOW_FROM = B0 + 3 * MINUTE;

type Fact = { kind: 'approval' | 'cancel'; m: string; amount: number; at: number };
const facts: Fact[] = [
  { kind: 'approval', m: 'a', amount: 10 * M_, at: B0 - 3 * HOUR },
  { kind: 'cancel', m: 'a', amount: 40 * M_, at: B0 + 10 * MINUTE + 5000 },
  { kind: 'cancel', m: 'a', amount: 10 * M_, at: B0 + 20 * MINUTE + 5000 },
  { kind: 'approval', m: 'a', amount: 70 * M_, at: B0 + 40 * MINUTE + 5000 },
  { kind: 'approval', m: 'a', amount: 5 * M_, at: B0 + 70 * MINUTE + 5000 },
  { kind: 'cancel', m: 'b', amount: 35 * M_, at: B0 + 5 * MINUTE + 5000 },
  { kind: 'approval', m: 'b', amount: 50 * M_, at: B0 + 30 * MINUTE + 5000 },
  { kind: 'cancel', m: 'c', amount: 31 * M_, at: L0 + 5 * MINUTE + 5000 },
  { kind: 'cancel', m: 'd', amount: 32 * M_, at: L0 + 10 * MINUTE + 5000 },
  { kind: 'cancel', m: 'e', amount: 33 * M_, at: B0 + 50 * MINUTE + 5000 },
  { kind: 'cancel', m: 'f', amount: 31 * M_, at: B0 + 80 * MINUTE + 5000 },
  { kind: 'approval', m: 'f', amount: 80 * M_, at: B0 + 85 * MINUTE + 5000 },
];
/** [merchant, amount, covers_to, paid_at] — written before the live evaluator starts, as scheduled payouts are. */
const payouts: [string, number, number, number][] = [
  ['a', 10 * M_, B0 - 2 * HOUR, B0 - HOUR],
  ['a', 20 * M_, B0 + 50 * MINUTE, B0 + 60 * MINUTE],
  ['a', 5 * M_, B0 + 80 * MINUTE, B0 + 90 * MINUTE],
  ['a', 7 * M_, B1, B1 + 30 * MINUTE],
  ['b', 1 * M_, B0 - 2 * HOUR, B0 - 90 * MINUTE],
  ['b', 15 * M_, B0 + 60 * MINUTE, B0 + 70 * MINUTE],
  ['c', 1 * M_, L0 - 2 * HOUR, L0 - HOUR],
  ['d', 1 * M_, L0 - 2 * HOUR, L0 - HOUR],
  ['d', 0, B0 + 10 * MINUTE, B0 + 15 * MINUTE],
  ['e', 1 * M_, B0 - 2 * HOUR, B0 - HOUR],
  ['e', 0, B0 + 55 * MINUTE, B0 + 57 * MINUTE],
  ['f', 1 * M_, B0 - 2 * HOUR, B0 - HOUR],
  ['f', 49 * M_, B0 + 90 * MINUTE, B0 + 100 * MINUTE],
];
const SHADOW = parseRules({ receivable: { minReceivable: 45 * M_ } });

describe('backtests: receivable and money', () => {
  let redis: Redis;
  let reader: BucketReader;
  let db: pg.Pool;
  let runner: BacktestRunner;
  let shadowId: string;

  beforeAll(async () => {
    redis = new Redis(services().REDIS_URL);
    const prefix = uniqueName('btm');
    const o = { prefix, partitions: 2, hotShards: 2, tz: TZ };
    const w = new BucketWriter(redis, o);
    reader = createBucketReader(redis, o);
    db = await riskStore(await freshDatabase('btm'));
    await seedRules(db, defaultRules());
    const shadow = await createDraft(db, { receivable: { minReceivable: 45 * M_ } }, 'receivable at 45M', 'test');

    for (const [m, amount, coversTo, paidAt] of payouts) w.payout(m, amount, coversTo, paidAt, iso(L0 - HOUR));
    const write = (lo: number, hi: number) => {
      for (const f of facts) if (f.at >= lo && f.at < hi) w[f.kind](f.m, f.amount, f.at);
    };
    write(-Infinity, L0);
    await w.flush();

    // The live evaluator, minute by minute: each minute's facts arrive, then the watermark closes it.
    let wm = 0;
    const clock = { now: 0 };
    const live: BucketReader = { ...reader, watermark: async () => wm };
    const ev = new Evaluator({
      rules: defaultRules(), tz: TZ, allowedLatenessMs: LATENESS, maxIngestLagMs: 120_000, replayAfterMs: 600_000,
      evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: prefix, slackEnabled: false,
    }, { reader: live, db, redis: null, log, now: () => clock.now, settlement: { kind: 'payouts' } });
    for (let M = L0; M < B1; M += MINUTE) {
      if (M === SHADOW_FROM) {
        await startShadow(db, shadow.version, 'test');
        shadowId = (await currentShadow(db))!.id;
      }
      write(M, M + MINUTE);
      await w.flush();
      wm = M + MINUTE + LATENESS;
      clock.now = wm + 2000;
      const r = await ev.evaluateNext();
      expect(r?.minute).toBe(M);
    }
    // analysts closed b's live alert as a false positive
    const b = await db.query(`SELECT id::text FROM alerts WHERE rule = 'receivable' AND merchant_id = 'b'`);
    expect(b.rows).toHaveLength(1);
    expect(await applyTriage(db, b.rows[0].id, 'analyst-1', { action: 'disposition', disposition: 'false_positive', note: 'refund batch, known' })).toBe(true);
    runner = new BacktestRunner({ tz: TZ, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100, settlement: { kind: 'payouts' } }, { reader, db, log, liveBusy: () => false });
  }, 300_000);

  afterAll(async () => {
    await db?.end();
    redis?.disconnect();
  });

  const key = (a: { rule: string; merchantId: string; firedAt: string | number; resolvedAt: string | number | null }) =>
    `${a.rule} ${a.merchantId} ${iso(new Date(a.firedAt).getTime())} ${a.resolvedAt === null ? 'firing' : iso(new Date(a.resolvedAt).getTime())}`;

  const backtest = (config = defaultRules(), from = B0, to = B1) => finishedBacktest(db, runner, config, from, to);

  it('a backtest of the live rules judges receivable exactly as live did', async () => {
    const live = (await liveAlerts(db, B0, B1, false)).map(key).sort();
    expect(live.filter((k) => k.startsWith('receivable '))).toEqual([
      `receivable a ${iso(B0 + 10 * MINUTE)} ${iso(B0 + 44 * MINUTE)}`,
      `receivable b ${iso(B0 + 5 * MINUTE)} ${iso(B0 + 34 * MINUTE)}`,
      `receivable c ${iso(L0 + 5 * MINUTE)} firing`,
      `receivable d ${iso(L0 + 10 * MINUTE)} ${iso(B0 + 19 * MINUTE)}`,
      `receivable e ${iso(B0 + 50 * MINUTE)} ${iso(B0 + 61 * MINUTE)}`,
      `receivable f ${iso(B0 + 80 * MINUTE)} ${iso(B0 + 89 * MINUTE)}`,
    ]);
    const result = await backtest();
    expect(result.alerts.map(key).sort()).toEqual(live);
    expect(result.vsLive).toMatchObject({ exact: true, onlyBacktest: [], onlyLive: [] });
    // the evidence of each backtest receivable alert fired in the period holds the live exposure at firing
    for (const m of ['a', 'b', 'e', 'f']) {
      const bt = result.alerts.find((x) => x.rule === 'receivable' && x.merchantId === m)!;
      const stored = await db.query(`SELECT exposure_at_fire FROM alerts WHERE rule = 'receivable' AND merchant_id = $1`, [m]);
      expect((bt.evidence as { exposure: unknown }).exposure).toEqual(stored.rows[0].exposure_at_fire);
    }
  });

  it('reports the receivable at firing, the peak, what a hold would have withheld and covered, and the KRW held on false positives', async () => {
    const result = await backtest();
    const money = (m: string) => result.alerts.find((x) => x.rule === 'receivable' && x.merchantId === m)!.money;
    const horizonTo = iso(B1);
    expect(money('a')).toEqual({ receivableAtFiring: '40000000', horizonTo, peakReceivable: '50000000', withheld: '25000000', covered: '25000000' });
    expect(money('b')).toEqual({ receivableAtFiring: '35000000', horizonTo, peakReceivable: '35000000', withheld: '15000000', covered: '15000000' });
    expect(money('e')).toEqual({ receivableAtFiring: '33000000', horizonTo, peakReceivable: '33000000', withheld: '0', covered: '0' });
    expect(money('f')).toEqual({ receivableAtFiring: '31000000', horizonTo, peakReceivable: '31000000', withheld: '49000000', covered: '31000000' });
    expect(money('c')).toBeNull(); // carried: fired before the period
    expect(result.money!.byRule.receivable).toEqual({ alerts: 4, receivableAtFiring: '139000000', covered: '71000000' });
    expect(result.money).toMatchObject({
      horizonDays: 7, merchants: 4, receivableAtFiring: '139000000', peakReceivable: '149000000', withheld: '89000000', covered: '71000000',
      falsePositive: { merchants: 1, withheld: '15000000' },
    });
  });

  it('a backtest without a settlement source neither judges receivable nor reports money', async () => {
    const plain = new BacktestRunner({ tz: TZ, maxIngestLagMs: 120_000, evaluatorName: 'default', pollMs: 100 }, { reader, db, log, liveBusy: () => false });
    const r = await finishedBacktest(db, plain, defaultRules(), B0, B1);
    expect(r.money).toBeNull();
    // the carried receivable alert holds (not judged), none fires
    expect(r.alerts.filter((a) => a.rule === 'receivable').map(key)).toEqual([`receivable c ${iso(L0 + 5 * MINUTE)} firing`, `receivable d ${iso(L0 + 10 * MINUTE)} firing`]);
  });

  it("a shadow version judges receivable too: its would-be alerts equal a backtest of it over the same minutes", async () => {
    const shadow = (await shadowAlerts(db, shadowId)).filter((a) => a.rule === 'receivable');
    const result = await backtest(SHADOW, SHADOW_FROM, B1);
    expect(shadow.map(key).sort()).toEqual(result.alerts.filter((a) => a.rule === 'receivable').map(key).sort());
    // at 45M: a fires at its 50M peak only, b and e never; the carried c and d (31M, 32M) resolve 5 clear minutes in
    expect(shadow.map(key).sort()).toEqual([
      `receivable a ${iso(B0 + 20 * MINUTE)} ${iso(B0 + 44 * MINUTE)}`,
      `receivable c ${iso(L0 + 5 * MINUTE)} ${iso(SHADOW_FROM + 4 * MINUTE)}`,
      `receivable d ${iso(L0 + 10 * MINUTE)} ${iso(SHADOW_FROM + 4 * MINUTE)}`,
    ]);
  });
});
