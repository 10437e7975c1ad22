/**
 * Memory stays flat while every dependency is gone. On a DEDICATED stack (its own PostgreSQL, Kafka and Redis under
 * .riskmon/, so stopping them disturbs no other test), `riskmon cdc`, `aggregate`, `alerting` and `api` run as
 * separate processes with traffic flowing; then PostgreSQL, Kafka and Redis are all stopped for
 * RISKMON_DEPS_DOWN_S seconds (CI: 360; the full 10 minutes: RISKMON_DEPS_DOWN_S=600, figures in
 * bench/results/2026-12-07-deps-down.md) while a client keeps calling the API (readiness, alerts, search, status,
 * sign-in, WebSocket connects). Every process's RSS and live heap (`riskmon_process_heap_live_bytes`: the heap in use
 * just after the last full collection) are sampled every 10 s. The first half of the outage (at least 60 s) is
 * warm-up. RSS is not what is judged for growth: under the failing requests V8 sizes the api's heap to the load
 * (measured: 150 → 236 MiB over the first ~3 minutes on a quiet machine, later on a slow one, then flat) while the
 * live set stays near 40 MiB. The live heap at the end may exceed the largest live heap of the warm-up by at most
 * DRIFT_MB — a queue or retry state growing per attempt shows there — and no RSS sample of the whole outage passes
 * CEILING_MB (twice a component's heap cap). Every process is still running at the end, and once the services are
 * back the API is ready again.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../lib/migrate.ts';
import { freePort } from '../lib/net.ts';
import { stackDown, stackUp, startStackService, stopStackService, type StackEnv } from '../scripts/stack/index.ts';
import { ROOT, spawnRiskmon, stopChild, waitFor } from './harness/index.ts';
import { nativeStackMissing } from './harness/services.ts';

const DOWN_S = Number(process.env.RISKMON_DEPS_DOWN_S ?? 360);
const WARMUP_S = Math.max(60, Math.round(DOWN_S / 2));
const SAMPLE_MS = 10_000;
/** What a process's live heap may grow between the warm-up's largest sample and the last. */
const DRIFT_MB = 16;
/** No process passes this at any time (twice the 256 MiB heap cap lib/launch.ts gives each component). */
const CEILING_MB = 512;
const KEY = crypto.randomBytes(24).toString('base64url');
const COMPONENTS = ['cdc', 'aggregate', 'alerting', 'api'] as const;

const missing = await nativeStackMissing();
if (missing) console.warn(`[deps down] skipped: it stops services on a native stack, which cannot run here: ${missing}`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

describe.skipIf(missing !== null)('every dependency down (dedicated stack)', () => {
  const dir = path.join(ROOT, '.riskmon', `deps-down-${crypto.randomBytes(4).toString('hex')}`);
  const children = new Map<string, ChildProcess>();
  const metricsPorts = new Map<string, number>();
  let stack: StackEnv;
  let port: number;

  beforeAll(async () => {
    stack = await stackUp({ dir, env: {}, log: () => {} });
    await migrate(stack.PG_URL, 'source');
    const db = new pg.Client({ connectionString: stack.PG_URL });
    await db.connect();
    await db.query(`INSERT INTO merchants (merchant_id, name) SELECT g, 'merchant ' || g FROM generate_series(1, 500) g`);
    await db.end();
    port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...stack, RISKMON_TOPIC: 'down', RISKMON_DLQ_TOPIC: 'down.dlq', RISKMON_SLOT: 'down', RISKMON_GROUP: 'down',
      RISKMON_REDIS_PREFIX: 'down', RISKMON_PARTITIONS: '4', RISKMON_HOT_SHARDS: '2', RISKMON_HTTP_PORT: String(port),
      RISKMON_API_KEYS: `${KEY}:admin`, RISKMON_SLACK_WEBHOOK_URL: '', RISKMON_METRICS_PORT: '0', RISKMON_LOG_LEVEL: 'warn',
    };
    mkdirSync(path.join(ROOT, 'test-artifacts'), { recursive: true });
    for (const c of COMPONENTS) {
      // The api serves /metrics on its own port; the others on one of their own.
      metricsPorts.set(c, c === 'api' ? port : await freePort());
      children.set(c, spawnRiskmon([c], {
        env: { ...env, RISKMON_METRICS_PORT: c === 'api' ? '0' : String(metricsPorts.get(c)) }, logFile: path.join(ROOT, 'test-artifacts', `deps-down-${c}.log`),
        onFailure: (code, tail) => console.error(`riskmon ${c} exited ${code}: ${tail}`),
      }));
      // The cdc creates the slot and topic the others use; the alerting and the api migrate the risk store.
      if (c === 'cdc') await waitFor(() => slotActive(stack.PG_URL), { timeoutMs: 90_000, message: 'cdc streaming' });
    }
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null))?.status === 200,
      { timeoutMs: 120_000, intervalMs: 500, message: 'the api ready' });
  }, 300_000);

  afterAll(async () => {
    for (const c of children.values()) await stopChild(c, 5000);
    await stackDown(dir, { purge: true, log: () => {} });
  });

  it(`RSS stays flat with PostgreSQL, Kafka and Redis all stopped for ${DOWN_S} s`, async () => {
    // Traffic before the outage, so every component has work in flight when the services go.
    const src = new pg.Client({ connectionString: stack.PG_URL });
    await src.connect();
    for (let i = 0; i < 200; i++) {
      await src.query('INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ($1, $2, 10000, now())', [i + 1, 1 + (i % 500)]);
    }
    await src.end();
    await new Promise((r) => setTimeout(r, 5000));

    for (const s of ['redis', 'kafka', 'pg'] as const) await stopStackService(dir, s);
    const t0 = Date.now();
    // A client that keeps calling the API meanwhile (a dashboard left open, probes, a program reconnecting).
    let calling = true;
    const api = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${KEY}` };
    const client = (async () => {
      while (calling) {
        await Promise.allSettled([
          fetch(`${api}/ready`), fetch(`${api}/health`), fetch(`${api}/api/alerts`, { headers: auth }),
          fetch(`${api}/api/merchants?q=merch`, { headers: auth }), fetch(`${api}/api/status`, { headers: auth }),
          fetch(`${api}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: KEY }) }),
          wsOnce(`ws://127.0.0.1:${port}/ws`, KEY),
        ]);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();

    const samples: { s: number; rss: Record<string, number>; live: Record<string, number> }[] = [];
    try {
      while (Date.now() - t0 < DOWN_S * 1000) {
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
        const rss: Record<string, number> = {};
        const live: Record<string, number> = {};
        for (const [c, child] of children) {
          expect(child.exitCode, `riskmon ${c} exited while its services were down`).toBeNull();
          rss[c] = rssMb(child.pid!);
          live[c] = await liveHeapMb(metricsPorts.get(c)!);
        }
        samples.push({ s: Math.round((Date.now() - t0) / 1000), rss, live });
      }
    } finally {
      calling = false;
      await client;
    }
    const header = `s\t${COMPONENTS.map((c) => `${c} rss\t${c} live`).join('\t')}`;
    const report = samples.map((x) => `${x.s}\t${COMPONENTS.map((c) => `${x.rss[c]}\t${x.live[c]}`).join('\t')}`).join('\n');
    writeFileSync(path.join(ROOT, 'test-artifacts', 'deps-down-rss.tsv'), `${header}\n${report}\n`);
    console.log(`[deps down] RSS and live heap (MiB) every ${SAMPLE_MS / 1000} s with every dependency down:\n${header}\n${report}`);

    const warmup = samples.filter((x) => x.s < WARMUP_S);
    expect(samples.length - warmup.length).toBeGreaterThanOrEqual(2);
    for (const c of COMPONENTS) {
      const warm = Math.max(...warmup.map((x) => x.live[c]));
      const last = samples.at(-1)!.live[c];
      const peak = Math.max(...samples.map((x) => x.rss[c]));
      expect(last, `${c}: live heap ${warm} MiB at most in the warm-up (${WARMUP_S} s), ${last} MiB at the end`).toBeLessThanOrEqual(warm + DRIFT_MB);
      expect(peak, `${c}: peak RSS ${peak} MiB`).toBeLessThanOrEqual(CEILING_MB);
    }

    // The services come back: the API is ready again (so what was measured was a process waiting, not a dead one).
    for (const s of ['pg', 'kafka', 'redis'] as const) await startStackService(dir, s);
    await waitFor(async () => (await fetch(`${api}/ready`).catch(() => null))?.status === 200,
      { timeoutMs: 180_000, intervalMs: 1000, message: 'the api ready again after the services came back' });
    for (const [c, child] of children) expect(child.exitCode, `riskmon ${c} exited`).toBeNull();
  }, (DOWN_S + 600) * 1000);
});

/** A process's `riskmon_process_heap_live_bytes` in MiB (NaN when its /metrics does not answer: fails the check). */
async function liveHeapMb(port: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => '');
  const m = /^riskmon_process_heap_live_bytes (\S+)$/m.exec(text);
  return m ? Math.round(Number(m[1]) / 2 ** 20) : NaN;
}

async function slotActive(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
    return (await c.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'down' AND active`)).rowCount === 1;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** The `ws` package (a dependency of @fastify/websocket; it ships no types here). */
const WebSocketClient: new (url: string, options?: { headers?: Record<string, string> }) => {
  on(ev: 'open' | 'close' | 'error' | 'unexpected-response', fn: () => void): void; close(): void; terminate(): void;
} = createRequire(import.meta.url)('ws');

/** One WebSocket connect with the key (Authorization), closed at once; resolves whatever happens. */
function wsOnce(url: string, key: string): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocketClient(url, { headers: { authorization: `Bearer ${key}` } });
    const done = () => { ws.terminate(); resolve(); };
    for (const ev of ['open', 'close', 'error', 'unexpected-response'] as const) ws.on(ev, done);
    setTimeout(done, 3000);
  });
}
