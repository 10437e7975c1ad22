/**
 * A dropped slot is not recreated silently (real PostgreSQL and Kafka): with the change topic already holding
 * changes, `riskmon cdc` refuses to start, naming the last published LSN and its time and the fix; with
 * `--accept-gap` it creates the slot anew, logs the range to backfill and records it where `riskmon status` shows it,
 * until a backfill covering it finishes.
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';
import { closeGapCoveredBy, keys, readGap, type BackfillRecord } from '../aggregator/store/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../lib/migrate.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { dropSlot, spawnRiskmon, streaming, waitExit, waitFor } from '../test/harness/index.ts';
import { kafkaOf, readAll, spawnCdc } from './testing.ts';

describe('cdc: a slot that disappeared', () => {
  let db: pg.Client;
  let env: Record<string, string>;
  let child: ChildProcess | null = null;
  const kafka = kafkaOf(services().KAFKA_BROKERS);

  beforeAll(async () => {
    const url = await freshDatabase('cdcgap');
    await migrate(url, 'source');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) VALUES (1, 'one')`);
    env = {
      PG_URL: url, KAFKA_BROKERS: services().KAFKA_BROKERS, RISKMON_TOPIC: uniqueName('gap'), RISKMON_SLOT: uniqueName('slot'),
      RISKMON_DLQ_TOPIC: uniqueName('gapdlq'), RISKMON_PARTITIONS: '2', RISKMON_HEARTBEAT_MS: '500',
      REDIS_URL: services().REDIS_URL, RISKMON_REDIS_PREFIX: uniqueName('gap'),
    };
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    if (child) await waitExit(child);
    await dropSlot(db, env.RISKMON_SLOT, { terminate: true }).catch(() => {});
    await db?.end();
  });

  it('refuses to start without --accept-gap, then starts with it', async () => {
    child = spawnCdc(env);
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: 'cdc streaming' });
    await db.query(`INSERT INTO payments VALUES (1, 1, 1000, now())`);
    await waitFor(async () => (await readAll(kafka, env.RISKMON_TOPIC)).some((r) => r.event.op === 'insert'), { timeoutMs: 30_000, message: 'the change published' });
    child.kill('SIGTERM');
    await waitExit(child);
    child = null;
    await dropSlot(db, env.RISKMON_SLOT, { terminate: true });
    await db.query(`INSERT INTO payments VALUES (2, 1, 2000, now())`); // committed while no slot exists: the gap
    // what an aggregator would have stored: the newest commit time the stream carried, on one partition
    const lastApplied = Date.now() - 5_000;
    const wm = new Redis(services().REDIS_URL);
    await wm.set(keys.watermark(env.RISKMON_REDIS_PREFIX, 1), String(lastApplied));
    wm.disconnect();

    const logs: string[] = [];
    const refused = spawnCdc(env, logs);
    expect(await waitExit(refused)).not.toBe(0);
    const text = logs.join('');
    expect(text).toMatch(/replication slot \\"[^"\\]+\\" does not exist, but topic \S+ already holds \d+ messages/);
    expect(text).toMatch(/Fix: start with --accept-gap .* riskmon backfill --from /);
    expect((await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.RISKMON_SLOT])).rowCount).toBe(0);

    const accepted: string[] = [];
    // no history backfill here: one through now would rebuild the gap and close it at once
    child = spawnRiskmon(['cdc', '--accept-gap'], { env: { ...process.env, RISKMON_LOG_LEVEL: 'info', ...env, RISKMON_BACKFILL_DAYS: '0' }, logs: accepted });
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: `cdc streaming with --accept-gap:\n${accepted.join('').slice(-2000)}` });
    expect(accepted.join('')).toMatch(/was gone; creating it anew as accepted \(--accept-gap\)/);

    // recorded for status: from the stream's newest commit time to the new slot, with the backfill that closes it
    const redis = new Redis(services().REDIS_URL);
    try {
      const gap = await readGap(redis, env.RISKMON_REDIS_PREFIX);
      expect(gap).toMatchObject({ slot: env.RISKMON_SLOT, from: new Date(lastApplied).toISOString() });
      expect(Date.parse(gap!.to)).toBeGreaterThan(lastApplied);
      expect(gap!.fix).toBe(`riskmon backfill --from ${gap!.from} --to ${gap!.to}`);
      expect(accepted.join('')).toContain(gap!.fix);
      const done = (from: string, to: string | null): BackfillRecord => ({
        state: 'done', kind: 'range', id: 'x', slot: null, from, to, consistentPoint: null, startedAt: from, finishedAt: to,
        rows: 0, chunksDone: 1, chunks: 1, topicChanges: 0, rowsPerSecond: null,
      });
      // a backfill that starts after the gap's start leaves it open; one over the whole gap closes it
      expect(await closeGapCoveredBy(redis, env.RISKMON_REDIS_PREFIX, done(new Date(lastApplied + 60_000).toISOString(), null))).toBe(false);
      expect(await readGap(redis, env.RISKMON_REDIS_PREFIX)).not.toBeNull();
      expect(await closeGapCoveredBy(redis, env.RISKMON_REDIS_PREFIX, done(new Date(lastApplied - 86_400_000).toISOString(), null))).toBe(true);
      expect(await readGap(redis, env.RISKMON_REDIS_PREFIX)).toBeNull();
    } finally {
      redis.disconnect();
    }
  }, 150_000);
});
