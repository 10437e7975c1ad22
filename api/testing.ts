/**
 * Test support for the api's integration and browser tests: a fresh source database and risk store, a unique
 * Redis prefix, the app with known keys. Only imported by *.int.test.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { chromium, type Browser } from 'playwright-core';
import pg from 'pg';
import type { Clock } from '../lib/clock.ts';
import { readConfig } from '../lib/config.ts';
import { logger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { freshDatabase, services, uniqueName } from '../test/harness/services.ts';
import { buildApp, type App } from './app.ts';
import { apiSpec } from './config.ts';
import { createDeps, type ApiDeps } from './deps.ts';

export const VIEWER = 'viewer-key-0123456789abcdef';
export const ADMIN = 'admin-key-0123456789abcdef';
/** Two named analysts (key:analyst:name); the admin and the viewer keys have no name (actor `key <id>`). */
export const ANALYST = 'analyst-key-0123456789abcdef';
export const ANALYST_NAME = 'Ji-woo Park';
export const ANALYST2 = 'analyst-key-9876543210abcdef';
export const ANALYST2_NAME = 'Min Kim';
export const TEST_KEYS = `${VIEWER}:viewer,${ADMIN}:admin,${ANALYST}:analyst:${ANALYST_NAME},${ANALYST2}:analyst:${ANALYST2_NAME}`;

export interface TestApi extends App {
  deps: ApiDeps;
  env: NodeJS.ProcessEnv;
  riskPg: pg.Pool;
  sourcePg: pg.Pool;
  publisher: Redis;
  close(): Promise<void>;
}

/**
 * A fresh API over fresh databases. Passing PG_URL and RISK_PG_URL (and RISKMON_REDIS_PREFIX) in `extraEnv` builds a
 * second instance over the same stores and channel instead, as a load balancer would see two of them.
 */
export async function testApi(
  extraEnv: NodeJS.ProcessEnv = {}, webDist: string | null = null, o: { now?: Clock; exposureOf?: ApiDeps['exposureOf'] } = {},
): Promise<TestApi> {
  const s = services();
  const shared = Boolean(extraEnv.PG_URL && extraEnv.RISK_PG_URL);
  const [source, risk] = shared ? [extraEnv.PG_URL!, extraEnv.RISK_PG_URL!] : await Promise.all([freshDatabase('api_src'), freshDatabase('api_risk')]);
  if (!shared) await Promise.all([migrate(source, 'source'), migrate(risk, 'risk')]);
  const env: NodeJS.ProcessEnv = {
    PG_URL: source, RISK_PG_URL: risk, KAFKA_BROKERS: s.KAFKA_BROKERS, REDIS_URL: s.REDIS_URL,
    RISKMON_REDIS_PREFIX: uniqueName('api'), RISKMON_SLOT: uniqueName('slot'), RISKMON_GROUP: uniqueName('grp'), RISKMON_TOPIC: uniqueName('topic'),
    RISKMON_API_KEYS: TEST_KEYS, RISKMON_WS_SERIES_POLL_MS: '200', RISKMON_LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const cfg = readConfig(apiSpec, env);
  const deps = await createDeps(cfg, webDist, { now: o.now, exposureOf: o.exposureOf });
  const { app, hub, routes } = await buildApp(deps, logger.child({ component: 'api-test' }, { level: 'warn' }));
  await hub.start();
  const publisher = new Redis(s.REDIS_URL);
  return {
    app, hub, routes, deps, env, riskPg: deps.riskPg, sourcePg: deps.sourcePg, publisher,
    async close() {
      await hub.stop();
      await app.close();
      await publisher.quit();
      await deps.close();
    },
  };
}

/** Inserts an alert row and its transition as the alert store does; returns the alert id and transition id. */
export async function insertAlert(db: pg.Pool, a: {
  rule?: string; merchantId: string; state?: 'firing' | 'resolved'; firedAt: string; resolvedAt?: string | null; evidence?: object; kind?: string;
}): Promise<{ id: string; eventId: number }> {
  const { rows } = await db.query(
    `INSERT INTO alerts (rule, merchant_id, state, fired_at, resolved_at, rule_version, evidence)
     VALUES ($1, $2, $3, $4, $5, 'test', $6) RETURNING id`,
    [a.rule ?? 'cancel_rate_spike', a.merchantId, a.state ?? 'firing', a.firedAt, a.resolvedAt ?? null, a.evidence ?? { note: 'test' }]);
  const t = await db.query(
    `INSERT INTO alert_transitions (alert_id, kind, minute, evidence) VALUES ($1, $2, $3, $4) RETURNING id`,
    [rows[0].id, a.kind ?? 'fired', a.firedAt, a.evidence ?? { note: 'test' }]);
  return { id: String(rows[0].id), eventId: Number(t.rows[0].id) };
}

/** The `ws` package (a dependency of @fastify/websocket; it ships no types here). */
export const WebSocketClient: new (url: string, options?: { headers?: Record<string, string> }) => {
  on(ev: 'message', fn: (d: unknown) => void): void; on(ev: 'open' | 'close', fn: () => void): void;
  on(ev: 'error', fn: (e: Error) => void): void; on(ev: 'unexpected-response', fn: (req: unknown, res: { statusCode: number }) => void): void;
  send(s: string): void; close(): void; readyState: number;
} = createRequire(import.meta.url)('ws');

/** Debian's Chromium (apt-get install -y chromium), or RISKMON_CHROMIUM. Browser tests skip with a message without it. */
export const CHROMIUM = process.env.RISKMON_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}
