/**
 * Secure connections with a private CA made by the test: Redis over TLS with an ACL user, a Redis Cluster (real
 * nodes, scripts/stack/replicated.ts) with an ACL user, a Redis Cluster over TLS (client port and cluster bus) with
 * an ACL user, Kafka over SASL_SSL. The right settings work end to end; a wrong password or a certificate the
 * client does not trust stops the process at once with a message naming the setting to fix (no retry loop hiding
 * it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { riskmonArgv } from '../lib/launch.ts';
import { DAY, MINUTE, dayStart } from '../lib/time.ts';
import { harness } from '../aggregator/harness.int.ts';
import { ROOT } from './harness/index.ts';
import pg from 'pg';
import { connections, readConfig } from '../lib/config.ts';
import { migrate } from '../lib/migrate.ts';
import { createKafka, verifyKafka } from '../lib/kafka/index.ts';
import { readAll } from '../cdc/testing.ts';
import { freshDatabase, uniqueName } from './harness/services.ts';
import { dropSlot, spawnRiskmon, streaming, waitExit, waitFor } from './harness/index.ts';
import { Redis } from 'ioredis';
import { makePki, startSaslSslKafka, startTlsPostgres, startTlsRedis, startTlsRedisCluster, type Pki } from './harness/secure.ts';
import { nodePorts } from '../scripts/stack/replicated.ts';
import { onNode, replicatedForTest } from './harness/replicated.ts';

let pki: Pki;
beforeAll(async () => { pki = await makePki(); });
afterAll(async () => { if (pki) fs.rmSync(pki.dir, { recursive: true, force: true }); });

/** Runs `riskmon <args>` until it exits (or `timeoutMs`); returns its exit code and everything it printed. */
function runUntilExit(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; output: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, riskmonArgv(args, [], env), { env, cwd: ROOT });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, output, ms: Date.now() - t0 }); });
  });
}

/** The number of keys one TLS cluster node holds (asked of that node alone, as the ACL user). */
async function countKeysOver(port: number, p: Pki): Promise<number> {
  const r = new Redis({ host: '127.0.0.1', port, username: 'riskmon', password: 'acl-secret', tls: { ca: [fs.readFileSync(p.caFile)] }, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    return await r.dbsize();
  } finally {
    r.disconnect();
  }
}

/** `n` payments through the harness' topic into an aggregator on the Redis under test: every bucket equals SQL. */
async function aggregatorCatchesUp(h: Awaited<ReturnType<typeof harness>>, n: number): Promise<void> {
  const base = dayStart(Date.now() - DAY, h.tz) - 60 * MINUTE;
  await h.cdc.bulkInsert(h.db, 'payments',
    `INSERT INTO payments (payment_id, merchant_id, amount, approved_at)
       SELECT g, 1 + g % 50, 1000 + g, to_timestamp($1::double precision / 1000 + g * 13) FROM generate_series(1, $2::int) g RETURNING *`, [base, n]);
  h.cdc.heartbeats();
  await h.publish();
  h.spawnAggregator();
  await h.caughtUp(60_000);
  expect(await h.diff()).toEqual([]);
}

describe('Redis over TLS with an ACL user', () => {
  it('works with the CA file and the user\'s password (from a _FILE); a wrong password or an untrusted CA stops the aggregator naming the setting', async () => {
    const redis = await startTlsRedis(pki, { name: 'riskmon', password: 'acl-secret' });
    const pwFile = path.join(pki.dir, 'redis-password');
    fs.writeFileSync(pwFile, 'acl-secret\n');
    const h = await harness({
      partitions: 2,
      redisEnv: { REDIS_URL: redis.url, RISKMON_REDIS_CA_FILE: pki.caFile, RISKMON_REDIS_USERNAME: 'riskmon', RISKMON_REDIS_PASSWORD_FILE: pwFile },
    });
    try {
      await aggregatorCatchesUp(h, 2000);

      const wrongPassword = await runUntilExit(['aggregate'], { ...h.env, RISKMON_REDIS_PASSWORD_FILE: '', RISKMON_REDIS_PASSWORD: 'not-it' });
      expect(wrongPassword.code).not.toBe(0);
      expect(wrongPassword.code).not.toBeNull(); // it stopped by itself
      expect(wrongPassword.output).toMatch(/Redis refused the credentials.*RISKMON_REDIS_PASSWORD/);
      expect(wrongPassword.output).not.toContain('not-it');

      const untrusted = await runUntilExit(['aggregate'], { ...h.env, RISKMON_REDIS_CA_FILE: pki.otherCaFile });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.code).not.toBeNull();
      expect(untrusted.output).toMatch(/TLS certificate is not trusted.*RISKMON_REDIS_CA_FILE/);
    } finally {
      await h.close();
      await redis.stop();
    }
  }, 180_000);
});

describe('Redis Cluster with an ACL user', () => {
  it('works with the user\'s password on every node; a wrong password or an unknown user stops the aggregator naming the setting', async () => {
    const rep = await replicatedForTest('acl', ['cluster']);
    let h: Awaited<ReturnType<typeof harness>> | null = null;
    try {
      // every node: the riskmon user, and the default user behind a password of its own (no anonymous access)
      for (const port of await nodePorts(rep.dir, 'cluster')) {
        await onNode(port, async (r) => {
          await r.call('ACL', 'SETUSER', 'riskmon', 'on', '>acl-secret', '~*', '&*', '+@all');
          await r.call('ACL', 'SETUSER', 'default', 'resetpass', '>admin-secret');
        });
      }
      h = await harness({
        partitions: 3,
        redisEnv: { RISKMON_REDIS_MODE: 'cluster', REDIS_URL: rep.env.REDIS_CLUSTER_URL, RISKMON_REDIS_USERNAME: 'riskmon', RISKMON_REDIS_PASSWORD: 'acl-secret' },
      });
      await aggregatorCatchesUp(h, 1000);

      for (const wrong of [{ RISKMON_REDIS_PASSWORD: 'not-it' }, { RISKMON_REDIS_USERNAME: 'nobody' }]) {
        const r = await runUntilExit(['aggregate'], { ...h.env, ...wrong });
        expect(r.code).not.toBe(0);
        expect(r.code).not.toBeNull(); // it stopped by itself
        expect(r.output).toMatch(/Redis refused the credentials.*RISKMON_REDIS_USERNAME \/ RISKMON_REDIS_PASSWORD/);
        expect(r.output).not.toContain('not-it');
      }
    } finally {
      await h?.close();
      await rep.down();
    }
  }, 240_000);
});

describe('Redis Cluster over TLS with an ACL user', () => {
  it('TLS on every node and on the cluster bus: the aggregator counts exactly; an untrusted CA stops it naming the setting', async () => {
    const cluster = await startTlsRedisCluster(pki, { name: 'riskmon', password: 'acl-secret' });
    let h: Awaited<ReturnType<typeof harness>> | null = null;
    try {
      h = await harness({
        partitions: 3,
        redisEnv: {
          RISKMON_REDIS_MODE: 'cluster', REDIS_URL: cluster.url, RISKMON_REDIS_CA_FILE: pki.caFile,
          RISKMON_REDIS_USERNAME: 'riskmon', RISKMON_REDIS_PASSWORD: 'acl-secret',
        },
      });
      await aggregatorCatchesUp(h, 1000);
      // the client followed the slots to more than one node over TLS (the keys of {p0}, {p1}, {p2} live on two)
      const owners = await Promise.all(cluster.ports.map((port) => countKeysOver(port, pki)));
      expect(owners.filter((n) => n > 0).length, `keys per node: ${owners.join(', ')}`).toBeGreaterThanOrEqual(2);

      const untrusted = await runUntilExit(['aggregate'], { ...h.env, RISKMON_REDIS_CA_FILE: pki.otherCaFile });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.code).not.toBeNull(); // it stopped by itself
      expect(untrusted.output).toMatch(/TLS certificate is not trusted.*RISKMON_REDIS_CA_FILE/);
    } finally {
      await h?.close();
      await cluster.stop();
    }
  }, 240_000);
});

describe('Kafka over SASL_SSL', () => {
  it('SCRAM-SHA-512 with the CA file streams changes; PLAIN and SCRAM-SHA-256 connect; a wrong password or an untrusted CA stops the cdc naming the setting', async () => {
    const kafka = await startSaslSslKafka(pki, [{ name: 'riskmon', password: 'kafka-secret' }]);
    const url = await freshDatabase('sasl');
    await migrate(url, 'source');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const pwFile = path.join(pki.dir, 'kafka-password');
    fs.writeFileSync(pwFile, 'kafka-secret\n');
    const topic = uniqueName('sasl');
    const env: NodeJS.ProcessEnv = {
      ...process.env, PG_URL: url, KAFKA_BROKERS: kafka.brokers, KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: pki.caFile,
      KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'riskmon', KAFKA_SASL_PASSWORD_FILE: pwFile,
      RISKMON_TOPIC: topic, RISKMON_DLQ_TOPIC: `${topic}_dlq`, RISKMON_SLOT: uniqueName('slot'), RISKMON_PARTITIONS: '2', RISKMON_LOG_LEVEL: 'info', RISKMON_BACKFILL_DAYS: '0',
    };
    try {
      for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
        await verifyKafka(readConfig(connections('kafkaBrokers'), { ...env, KAFKA_SASL_MECHANISM: mechanism })); // throws on refusal
      }
      const logs: string[] = [];
      const cdc = spawnRiskmon(['cdc'], { env, logs });
      try {
        await waitFor(() => streaming(db, env.RISKMON_SLOT!), { timeoutMs: 90_000, intervalMs: 200, message: 'cdc streaming over SASL_SSL' });
        await db.query(`INSERT INTO merchants VALUES (1, 'one'); INSERT INTO payments VALUES (1, 1, 5000, now())`);
        const secure = createKafka(readConfig(connections('kafkaBrokers'), env), { clientId: 'sasl-test' });
        const rows = await waitFor(async () => {
          const all = (await readAll(secure, topic)).filter((r) => r.event.op === 'insert');
          return all.length ? all : null;
        }, { timeoutMs: 60_000, intervalMs: 500, message: 'the change reached the SASL_SSL topic' });
        expect(rows[0].event.table).toBe('public.payments');
      } finally {
        cdc.kill('SIGTERM');
        await waitExit(cdc);
      }

      const wrongPassword = await runUntilExit(['cdc'], { ...env, KAFKA_SASL_PASSWORD_FILE: '', KAFKA_SASL_PASSWORD: 'not-it' });
      expect(wrongPassword.code).not.toBe(0);
      expect(wrongPassword.code).not.toBeNull();
      expect(wrongPassword.output).toMatch(/Kafka refused the SASL credentials.*KAFKA_SASL_PASSWORD/);
      expect(wrongPassword.output).not.toContain('not-it');

      const untrusted = await runUntilExit(['cdc'], { ...env, KAFKA_SSL_CA_FILE: pki.otherCaFile });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.code).not.toBeNull();
      expect(untrusted.output).toMatch(/TLS certificate is not trusted.*KAFKA_SSL_CA_FILE/);
    } finally {
      await dropSlot(db, env.RISKMON_SLOT!).catch(() => {});
      await db.end();
      await kafka.stop();
    }
  }, 300_000);
});

describe('PostgreSQL over TLS (sslmode in the URL)', () => {
  it('verify-full with the CA works for riskmon migrate; an untrusted CA stops the cdc naming PG_URL', async () => {
    const server = await startTlsPostgres(pki);
    try {
      const url = (db: string, ca: string) => `postgres://postgres@127.0.0.1:${server.port}/${db}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;
      const c = new pg.Client({ connectionString: url('postgres', pki.caFile) });
      await c.connect();
      expect((await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0].ssl).toBe(true);
      await c.query('CREATE DATABASE tls_source');
      await c.query('CREATE DATABASE tls_risk');
      await c.end();

      const ok = await runUntilExit(['migrate'], { ...process.env, PG_URL: url('tls_source', pki.caFile), RISK_PG_URL: url('tls_risk', pki.caFile) });
      expect(ok.output).toMatch(/risk store migrated/);
      expect(ok.code).toBe(0);

      const untrusted = await runUntilExit(['cdc'], { ...process.env, PG_URL: url('tls_source', pki.otherCaFile), KAFKA_BROKERS: '127.0.0.1:1' });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.code).not.toBeNull();
      expect(untrusted.output).toMatch(/cannot connect to the source PostgreSQL \(PG_URL\).*certificate/);
    } finally {
      await server.stop();
    }
  }, 120_000);
});
