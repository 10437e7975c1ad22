import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { encodeEvent, type RowChange } from '../lib/events.ts';
import { referenceMapping } from '../lib/mapping.ts';
import { Applier } from './apply.ts';
import { DayClock } from './layout.ts';
import { buildPlan, candidateCache, type Msg } from './plan.ts';
const port = 46000 + Math.floor(Math.random() * 1000);
const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const redis = new Redis(port);
const now = Date.now();
const msgs: Msg[] = [];
for (let i = 0; i < 100_000; i++) {
  const at = now - 3 * 3600_000 + i * 100;
  const e: RowChange = { v: 1, lsn: `0/${(0x1000 + i * 16).toString(16)}`, seq: 0, commitTs: new Date(at + 500).toISOString(), xid: 1, table: 'public.payments', op: 'insert', old: null,
    row: { payment_id: String(i), merchant_id: String(1 + Math.floor(Math.random() * 100000)), amount: String(1000 + i % 50000), approved_at: new Date(at).toISOString() } };
  msgs.push({ offset: String(i), value: Buffer.from(encodeEvent(e)) });
}
const clock = new DayClock('Asia/Seoul');
const cands = candidateCache(12, 8);
const applier = new Applier(redis, 'prof');
let tPlan = 0, tApply = 0;
for (let i = 0; i < msgs.length; i += 2000) {
  const t0 = performance.now();
  const plan = buildPlan(msgs.slice(i, i + 2000), { prefix: 'prof', partition: 0, partitions: 12, hotShards: 8, mapping: referenceMapping, clock,
    retention: { minuteTtlMs: 2 * 86400000, hourTtlMs: 36 * 86400000, dayTtlMs: 400 * 86400000 }, windowKeepMinutes: 240, allowedLatenessMs: 5000, now, watermark: null, candidates: cands });
  const t1 = performance.now();
  await applier.apply(0, plan, { mode: 'replay', first: '0', next: '', windowKeepMinutes: 240 });
  tApply += performance.now() - t1; tPlan += t1 - t0;
}
const stats = await redis.info('commandstats');
console.log({ planMs: Math.round(tPlan), applyMs: Math.round(tApply), perSec: Math.round(100000 / ((tPlan + tApply) / 1000)) });
console.log(stats.split('\n').filter((l) => /evalsha|hget|hset|expireat|sadd/.test(l)).join('\n'));
redis.disconnect(); child.kill();
