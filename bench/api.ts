/**
 * API benchmark: REST p50/p99 of a 7-day hourly series and a 2-hour minute series under 200 concurrent clients,
 * and the time for one alert transition to reach 1,000 WebSocket clients.
 *
 * The API runs in a child process (this file with --serve) so the load generator does not share its event loop;
 * buckets are written through the aggregator's apply path under a fresh Redis prefix. Nothing is written to
 * PostgreSQL. Run alone: `npx tsx bench/api.ts` (with the stack's env exported).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { BucketWriter, seedTrendingMerchant } from '../aggregator/store/index.ts';
import { dayStart } from '../lib/time.ts';
import { dropKeys } from '../test/harness/index.ts';

const CLIENTS = 200;
const REQUESTS = 6000;
const WS_CLIENTS = 1000;
const WS_ROUNDS = 5;
const KEY = 'bench-viewer-key-0123456789abcdef';
const MERCHANTS = 8;

type WsClient = { on(ev: string, fn: (...a: any[]) => void): void; close(): void; terminate(): void };
const WebSocket: new (url: string, options?: { headers?: Record<string, string> }) => WsClient = createRequire(import.meta.url)('ws');

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const round = (x: number) => Math.round(x * 100) / 100;

async function load(urls: string[]): Promise<{ p50: number; p99: number; rps: number; errors: number }> {
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < REQUESTS) {
      const url = urls[next++ % urls.length];
      const s = performance.now();
      const res = await fetch(url, { headers: { authorization: `Bearer ${KEY}` } });
      await res.arrayBuffer();
      if (res.status !== 200) errors++;
      lat.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { p50: round(pct(lat, 50)), p99: round(pct(lat, 99)), rps: Math.round(lat.length / secs), errors };
}

async function fanout(base: string, publisher: Redis, channel: string): Promise<{ maxMs: number; p99Ms: number }> {
  const clients: WsClient[] = [];
  const arrivals: number[][] = [];
  let r = 0;
  await Promise.all(Array.from({ length: WS_CLIENTS }, (_, i) => new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${KEY}` } });
    clients.push(ws);
    ws.on('error', reject);
    ws.on('message', (d: Buffer) => {
      const m = JSON.parse(String(d));
      if (m.type === 'hello') resolve();
      else if (m.type === 'alert') (arrivals[m.eventId] ??= []).push(performance.now());
    });
    void i;
  })));
  const results: { maxMs: number; p99Ms: number }[] = [];
  for (r = 1; r <= WS_ROUNDS; r++) {
    const sent = performance.now();
    await publisher.publish(channel, JSON.stringify({
      type: 'alert', eventId: r, transition: 'fired',
      alert: { id: String(r), rule: 'cancel_rate_spike', merchantId: '900001', state: 'firing', firedAt: new Date().toISOString(), resolvedAt: null, evidence: {} },
    }));
    while ((arrivals[r]?.length ?? 0) < WS_CLIENTS) await new Promise((ok) => setTimeout(ok, 2));
    const d = arrivals[r].map((t) => t - sent).sort((a, b) => a - b);
    results.push({ maxMs: d[d.length - 1], p99Ms: pct(d, 99) });
  }
  for (const c of clients) c.terminate();
  results.sort((a, b) => a.maxMs - b.maxMs);
  const mid = results[Math.floor(results.length / 2)];
  return { maxMs: round(mid.maxMs), p99Ms: round(mid.p99Ms) };
}

/** Extra node options for the API process, e.g. BENCH_API_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
function serverNodeArgs(): string[] {
  return (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

function startServer(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...serverNodeArgs(), '--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /^LISTENING (\S+)$/m.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`api server exited with ${code} before listening`)));
  });
}

export async function benchApi(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const prefix = `bench_api_${Date.now().toString(36)}`;
  const tz = env.RISKMON_TZ || 'Asia/Seoul';
  const partitions = Number(env.RISKMON_PARTITIONS || 12);
  const hotShards = Number(env.RISKMON_HOT_SHARDS || 8);
  const redis = new Redis(env.REDIS_URL!);
  const now = Date.now();
  const w = new BucketWriter(redis, { prefix, partitions, hotShards, tz });
  for (let m = 0; m < MERCHANTS; m++) seedTrendingMerchant(w, String(900001 + m), now, dayStart(now, tz));
  const events = await w.flush();

  const serverEnv = {
    ...env, RISKMON_REDIS_PREFIX: prefix, RISKMON_HTTP_PORT: '0', RISKMON_HTTP_HOST: '127.0.0.1', RISKMON_API_KEYS: `${KEY}:viewer`,
    RISKMON_RATE_LIMIT_MAX: '0', RISKMON_LOG_LEVEL: 'warn',
  };
  const { child, url } = await startServer(serverEnv);
  try {
    const iso = (ms: number) => new Date(ms).toISOString();
    const ids = Array.from({ length: MERCHANTS }, (_, m) => String(900001 + m));
    const hourly = ids.map((id) => `${url}/api/merchants/${id}/series?from=${iso(now - 7 * 86_400_000)}&to=${iso(now)}&step=1h`);
    const minute = ids.map((id) => `${url}/api/merchants/${id}/series?from=${iso(now - 2 * 3_600_000)}&to=${iso(now)}&step=1m`);
    await load(hourly.slice(0, 2)); // warm-up (JIT, connections)
    const h = await load(hourly);
    const m = await load(minute);
    const f = await fanout(url, redis, `${prefix}:alerts`);
    if (h.errors || m.errors) throw new Error(`non-200 answers during the load: ${h.errors + m.errors}`);
    return {
      api_seed_events: events,
      api_series_7d_1h_p50_ms: h.p50, api_series_7d_1h_p99_ms: h.p99, api_series_7d_1h_rps: h.rps,
      api_series_2h_1m_p50_ms: m.p50, api_series_2h_1m_p99_ms: m.p99, api_series_2h_1m_rps: m.rps,
      api_concurrent_clients: CLIENTS,
      ws_fanout_1000_clients_ms: f.maxMs, ws_fanout_1000_clients_p99_ms: f.p99Ms,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    // The bench's keys go: everything under its own prefix.
    await dropKeys(redis, `${prefix}:*`);
    await redis.quit();
  }
}

// ---- entry points ---------------------------------------------------------------------------------------------
const self = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (self && process.argv.includes('--serve')) {
  const { startApi } = await import('../api/index.ts');
  const svc = await startApi(process.env);
  process.stdout.write(`LISTENING ${svc.url}\n`);
  process.on('SIGTERM', () => void svc.stop().then(() => process.exit(0)));
} else if (self) {
  const figures = await benchApi(process.env);
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
