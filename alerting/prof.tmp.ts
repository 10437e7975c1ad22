import { Redis } from 'ioredis';
import pg from 'pg';
import { createBucketReader } from '../aggregator/read.ts';
import { minuteStart, MINUTE } from '../lib/time.ts';
import { logger } from '../lib/logger.ts';
import { Evaluator } from './evaluator.ts';
import { defaultRules } from './rules/config.ts';
import { riskStore } from './testing/fixtures.ts';
const redis = new Redis(process.env.REDIS_URL!);
const prefix = 'bench_al_mwr3e959brm0';
const base = createBucketReader(redis, { prefix, partitions: 12, hotShards: 8, tz: 'Asia/Seoul' });
const realWm = (await base.watermark())!;
let wm = minuteStart(realWm - 65000) - 40 * MINUTE + 65000;
const reader = { ...base, series: base.series.bind(base), totals: base.totals.bind(base), totalsByMerchant: base.totalsByMerchant.bind(base), watermark: async () => wm };
const admin = new pg.Client({ connectionString: process.env.RISK_PG_URL }); await admin.connect();
const name = `prof_${Date.now()}`; await admin.query(`CREATE DATABASE ${name}`);
const u = new URL(process.env.RISK_PG_URL!); u.pathname = `/${name}`;
const db = await riskStore(u.toString());
const ev = new Evaluator({ rules: defaultRules(), tz: 'Asia/Seoul', allowedLatenessMs: 5000, maxIngestLagMs: 120000, replayAfterMs: 1e9, evalPollMs: 200, maxCatchUpMinutes: 1440, evaluatorName: 'd', redisPrefix: prefix, slackEnabled: true }, { reader, db, redis, log: logger, now: () => wm + 1000 });
for (let i = 0; i < 6; i++) {
  const r = await ev.evaluateNext();
  console.log(JSON.stringify({ ...r, ms: Math.round(r!.ms), readMs: Math.round(r!.readMs), ruleMs: Math.round(r!.ruleMs), commitMs: Math.round(r!.commitMs) }));
  wm += MINUTE;
}
await db.end(); await admin.query(`DROP DATABASE ${name} WITH (FORCE)`); await admin.end(); redis.disconnect();
