/**
 * What integration tests use to reach the services of test/global-setup.ts and to isolate themselves:
 * every test takes its own database (freshDatabase), and unique topic, consumer-group, slot and Redis key-prefix
 * names (uniqueName), so files can run in parallel against one stack.
 */
import crypto from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { stackPrepare, restartService, startStackService, stopStackService, withDatabase, type ServiceName, type StackEnv } from '../../scripts/stack/index.ts';
import { createKafka, kafkaConfigOf } from '../../lib/kafka/index.ts';
import { waitFor } from './index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    PG_URL: string;
    RISK_PG_URL: string;
    KAFKA_BROKERS: string;
    REDIS_URL: string;
    /** Data folder of the stack the setup started; '' when every URL came from the environment. */
    RISKMON_TEST_STACK_DIR: string;
  }
}

/** Databases made by freshDatabase start with this, so a later run can drop the leftovers. */
const TEST_DB_PREFIX = 't_';

/** The service URLs; from process.env (set by the global setup, inherited by workers) or vitest's inject(). */
export function services(): StackEnv {
  const get = (k: keyof StackEnv): string => {
    const v = process.env[k] || safeInject(k);
    if (!v) throw new Error(`${k} is not set: run integration tests through vitest (project "integration") or export it`);
    return v;
  };
  return { PG_URL: get('PG_URL'), RISK_PG_URL: get('RISK_PG_URL'), KAFKA_BROKERS: get('KAFKA_BROKERS'), REDIS_URL: get('REDIS_URL') };
}

function safeInject(k: keyof StackEnv): string | undefined {
  try {
    return inject(k);
  } catch {
    return undefined; // outside a vitest worker
  }
}

/**
 * A name no other test or run uses: `<prefix>_<time><random>`, lower case [a-z0-9_], at most 63 characters
 * (valid for PostgreSQL databases and replication slots, Kafka topics and groups, Redis key prefixes).
 */
export function uniqueName(prefix = 't'): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40);
  return `${clean}_${Date.now().toString(36)}${crypto.randomBytes(4).toString('hex')}`;
}

/**
 * A new, empty database on the source PostgreSQL server (wal_level=logical, so logical slots work in it).
 * Returns its URL. Drop it with dropDatabase, or leave it: the next test run on the test stack drops leftovers.
 */
export async function freshDatabase(prefix = 'db'): Promise<string> {
  const name = uniqueName(`${TEST_DB_PREFIX}${prefix}`);
  await withAdmin(services().PG_URL, (c) => c.query(`CREATE DATABASE "${name}"`));
  return withDatabase(services().PG_URL, name);
}

/** Drops a database made by freshDatabase, with the replication slots in it and its open sessions. */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await withAdmin(url, async (c) => {
    await dropSlotsAndSessions(c, [name]);
    await c.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}"`);
  });
}

/**
 * Fault injection on the stack the global setup started: stop (hard = SIGKILL), start, or restart one service,
 * keeping its data and port. Throws when the services came from the environment (nothing of ours to stop).
 */
export const faults = {
  stop: (name: ServiceName, opts: { hard?: boolean } = {}) => stopStackService(stackDir(), name, opts),
  start: (name: ServiceName) => startStackService(stackDir(), name),
  restart: (name: ServiceName, opts: { hard?: boolean } = {}) => restartService(stackDir(), name, opts),
  /** True when the services are our own stack (fault tests should skip otherwise). */
  available: (): boolean => Boolean(process.env.RISKMON_TEST_STACK_DIR || safeInjectDir()),
};

function stackDir(): string {
  const dir = process.env.RISKMON_TEST_STACK_DIR || safeInjectDir();
  if (!dir) throw new Error('services come from the environment, not a test stack: fault injection is unavailable');
  return dir;
}

function safeInjectDir(): string {
  try {
    return inject('RISKMON_TEST_STACK_DIR');
  } catch {
    return '';
  }
}

/**
 * Clears what earlier runs left on a test stack: databases made by freshDatabase (and their slots), inactive
 * slots, non-internal Kafka topics, all Redis keys. Called by the global setup only when no other run shares the
 * stack and every service is our own.
 */
export async function resetServices(env: StackEnv): Promise<void> {
  await withAdmin(env.PG_URL, async (c) => {
    const like = `${TEST_DB_PREFIX.replace('_', '\\_')}%`;
    const { rows } = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [like]);
    const names = rows.map((r) => r.datname);
    await dropSlotsAndSessions(c, names, true);
    for (const name of names) await c.query(`DROP DATABASE IF EXISTS "${name}"`);
  });
  const admin = createKafka(kafkaConfigOf(env.KAFKA_BROKERS), { clientId: 'riskmon-test-reset' }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => !t.startsWith('__'));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 60_000 });
    const { groups } = await admin.listGroups();
    if (groups.length) await admin.deleteGroups(groups.map((g) => g.groupId)).catch(() => {});
  } finally {
    await admin.disconnect();
  }
  const redis = new Redis(env.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await redis.flushall();
  redis.disconnect();
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Slots must go before their database, and open sessions (walsenders included) block DROP DATABASE.
 * `allSlots` also drops every slot of other databases (reset of a test stack).
 */
async function dropSlotsAndSessions(c: pg.Client, databases: string[], allSlots = false): Promise<void> {
  const params = [databases, allSlots];
  const slots = '($2::boolean OR database = ANY($1::text[]))';
  await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()`, [databases]);
  await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active_pid IS NOT NULL AND ${slots}`, params);
  // A terminated walsender releases its slot a moment later; retry the drop briefly.
  await waitFor(
    async () => {
      await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND ${slots}`, params);
      const { rowCount } = await c.query(`SELECT 1 FROM pg_replication_slots WHERE ${slots}`, params);
      return !rowCount;
    },
    { timeoutMs: 10_000, intervalMs: 200, message: 'dropping replication slots' },
  );
}

/**
 * Why the native launcher cannot start services on this machine (null when it can). The tests that restart
 * PostgreSQL, Kafka or Redis run on a dedicated native stack of their own whichever path the shared services took,
 * so on a machine with Docker and no PostgreSQL, Redis or JRE (a laptop) they are skipped with this reason. Nothing
 * is installed by asking: `npm run stack -- prepare` (or .ci/run) does that.
 */
export async function nativeStackMissing(): Promise<string | null> {
  try {
    await stackPrepare({ ...process.env, CI: '', RISKMON_AUTO_INSTALL: '' }, () => {});
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
