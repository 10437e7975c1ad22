/**
 * A dropped slot is not recreated silently (real PostgreSQL and Kafka): with the change topic already holding
 * changes, `riskmon cdc` refuses to start, naming the last published LSN and its time and the fix; with
 * `--accept-gap` it creates the slot anew and logs the range to backfill.
 */
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../lib/migrate.ts';
import { freshDatabase, services, uniqueName } from '../test/helpers/services.ts';
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

    const logs: string[] = [];
    const refused = spawnCdc(env, logs);
    expect(await waitExit(refused)).not.toBe(0);
    const text = logs.join('');
    expect(text).toMatch(/replication slot \\"[^"\\]+\\" does not exist, but topic \S+ already holds \d+ messages/);
    expect(text).toMatch(/Fix: start with --accept-gap .* riskmon backfill --from /);
    expect((await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.RISKMON_SLOT])).rowCount).toBe(0);

    const accepted: string[] = [];
    child = spawnRiskmon(['cdc', '--accept-gap'], { env: { ...process.env, RISKMON_LOG_LEVEL: 'info', ...env }, logs: accepted });
    await waitFor(() => streaming(db, env.RISKMON_SLOT), { timeoutMs: 60_000, message: `cdc streaming with --accept-gap:\n${accepted.join('').slice(-2000)}` });
    expect(accepted.join('')).toMatch(/was gone; creating it anew as accepted \(--accept-gap\)/);
  }, 150_000);
});
