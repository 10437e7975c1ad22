/**
 * The API as a Fastify instance, without a port: plugins, then the auth hook, then routes. Tests build it with
 * their own dependencies and call `inject()`; server.ts listens.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type { Role } from '../lib/config.ts';
import type { Logger } from '../lib/logger.ts';
import { registry } from '../lib/metrics.ts';
import { withTimeout } from '../lib/timeout.ts';
import { allows, AuthFailures, authorize, bearerOf, KeyRing, refuseIfBlocked, type Principal } from './auth.ts';
import { cookieOf, SESSION_COOKIE, Sessions } from './sessions.ts';
import { sessionRoutes } from './routes/session.ts';
import type { ApiDeps } from './deps.ts';
import { ApiError, errorHandler } from './errors.ts';
import { httpRequests } from './metrics.ts';
import { alertRoutes } from './routes/alerts.ts';
import { deadLetterRoutes } from './routes/deadletters.ts';
import { holdRoutes } from './routes/holds.ts';
import { meRoutes } from './routes/me.ts';
import { merchantRoutes } from './routes/merchants.ts';
import { exposureRoutes } from './routes/exposure.ts';
import { ruleRoutes } from './routes/rules.ts';
import { seriesRoutes } from './routes/series.ts';
import { silenceRoutes } from './routes/silences.ts';
import { statusRoutes } from './routes/status.ts';
import { triageRoutes } from './routes/triage.ts';
import { ErrorBody } from './schemas.ts';
import { LiveHub } from './ws.ts';

declare module 'fastify' {
  /** `role`: the least role a route needs (viewer when unset); `public`: served without a key. */
  interface FastifyContextConfig { role?: Role; public?: boolean }
  interface FastifyRequest { principal?: Principal; /** the session the request came with, when it came with one */ sessionId?: string }
}

/**
 * A plugin whose routes (registered by a third-party plugin inside it: the documentation, the static dashboard) are
 * all public. Encapsulated, so the mark reaches only the routes registered within.
 */
function publicRoutes(register: (pub: FastifyInstance) => Promise<void>) {
  return async (pub: FastifyInstance) => {
    pub.addHook('onRoute', (r) => { r.config = { ...r.config, public: true }; });
    await register(pub);
  };
}

/** RISKMON_TRUST_PROXY as Fastify's trustProxy: '' → false, 'true' → true, '2' → 2 hops, else a list of addresses. */
export function trustProxyOf(v: string): boolean | number | string[] {
  const s = v.trim();
  if (!s || s === 'false') return false;
  if (s === 'true') return true;
  if (/^\d+$/.test(s)) return Number(s);
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a cookie-authenticated request comes from the dashboard's own origin (or one allowed by CORS). Browsers
 * send Origin on every WebSocket upgrade and cross-origin write; a WebSocket upgrade must carry one (a browser
 * always does), a write may lack it (then it is same-origin: SameSite=Strict kept the cookie off anything else).
 */
function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[], required: boolean): boolean {
  if (!origin) return !required;
  if (allowed.includes(origin)) return true;
  try { return new URL(origin).host === host; } catch { return false; }
}

/** A rate-limit window as people say it: "1 minute", "90 seconds", "2 hours". */
export function windowText(ms: number): string {
  const [n, unit] = ms % 3_600_000 === 0 ? [ms / 3_600_000, 'hour'] : ms % 60_000 === 0 ? [ms / 60_000, 'minute'] : [Math.round(ms / 1000), 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** A registered route; `documented` is false for the ones left out of the OpenAPI document on purpose. */
export interface RouteInfo { method: string; url: string; documented: boolean }
export interface App { app: FastifyInstance; hub: LiveHub; routes: readonly RouteInfo[] }


export async function buildApp(deps: ApiDeps, log: Logger): Promise<App> {
  const { cfg } = deps;
  const ring = new KeyRing(cfg.apiKeys, cfg.keyIdSecret);
  const failures = new AuthFailures(cfg.authFailMax, cfg.authFailWindowMs);
  const sessions = new Sessions(deps.redis, { prefix: cfg.redisPrefix, ttlMs: cfg.sessionTtlMs, maxPerKey: cfg.sessionMaxPerKey });
  const corsOrigins = cfg.corsOrigins.split(',').map((s) => s.trim()).filter(Boolean);
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines would flood the log at dashboard polling rates; the request histogram covers them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: cfg.bodyLimit,
    trustProxy: trustProxyOf(cfg.trustProxy) as FastifyServerOptions['trustProxy'],
    // A client gets this long to send a whole request (then 408), and a connection that sends nothing is closed;
    // slow SQL is bounded by the pools' statement_timeout (deps.ts).
    requestTimeout: cfg.httpRequestTimeoutMs,
    connectionTimeout: cfg.httpIdleTimeoutMs,
    // Errors are ours to shape (errors.ts); Fastify must not answer 400s with its own body.
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
  });
  // Every route as registered, so a test can hold the OpenAPI document against the routes that exist.
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, documented: !r.schema?.hide });
  });
  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));
  app.addSchema(ErrorBody);

  // The dashboard is where admin keys act: security headers on every response. The CSP allows only this origin's
  // scripts, styles and connections (no inline script or style: the built dashboard has none), data: images (the
  // favicon), and no framing at all (clickjacking). TLS ends in front of riskmon, so HSTS is the proxy's to send.
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'], fontSrc: ["'self'"],
        connectSrc: ["'self'"], objectSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"], frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: false,
    xFrameOptions: { action: 'deny' }, // for browsers without frame-ancestors
  });
  if (cfg.corsOrigins) {
    await app.register(cors, { origin: corsOrigins });
  }
  if (cfg.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: cfg.rateLimitMax,
      timeWindow: cfg.rateLimitWindowMs,
      // Per key when one is presented (hashed: the limiter's store must not hold keys), else per address.
      keyGenerator: (req) => {
        const k = bearerOf(req.headers.authorization);
        return k ? createHash('sha256').update(k).digest('hex').slice(0, 16) : req.ip;
      },
      // The configured window, not the limiter's `after` (the time left in it, "58 seconds" on a slow request).
      errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'rate_limited', message: `more than ${ctx.max} requests in ${windowText(cfg.rateLimitWindowMs)}; retry in ${ctx.after}` }),
    });
  }
  await app.register(swagger, {
    openapi: {
      info: { title: 'riskmon API', version: '1', description: 'Merchant risk monitoring: buckets, alerts, silences, pipeline status. Authorization: Bearer <key>.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // Swagger UI at /docs; the OpenAPI document itself at /docs/json (and /docs/yaml).
  await app.register(publicRoutes(async (pub) => {
    await pub.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true }, staticCSP: true });
  }));
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  // Authentication, decided on the route the router matched (never on the raw URL, whose spelling — `/%61pi/…`,
  // an absolute-form target — the router normalises): every route needs a viewer key unless it is marked public,
  // and analyst or admin where the route says so. Only the not-found handler (no matched route) answers without one.
  // An address with too many failed authentications is refused first, before its key is even looked at; the
  // request rate limit (per key) counts only what got past this hook.
  // A request authenticates by `Authorization: Bearer <key>` (programs) or by the dashboard's session cookie; with
  // the cookie, writes and WebSocket upgrades must come from the dashboard's own origin.
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions;
    if (route.url === undefined || route.config?.public === true) return;
    refuseIfBlocked(failures, req.ip, reply);
    const need = route.config?.role ?? 'viewer';
    const key = bearerOf(req.headers.authorization);
    const sid = key === null ? cookieOf(req.headers.cookie, SESSION_COOKIE) : null;
    if (sid) {
      let keyId: string | null;
      try { keyId = await sessions.keyIdOf(sid); } catch (err) {
        req.log.warn({ err }, 'session lookup failed');
        throw new ApiError('unavailable', 'sessions cannot be read right now; retry shortly');
      }
      const p = keyId === null ? null : ring.byKeyId(keyId);
      if (!p) throw new ApiError('unauthorized', 'the session has expired or was ended: sign in again');
      const isWs = route.url === '/ws';
      if ((isWs || !SAFE_METHODS.has(req.method)) && !originAllowed(req.headers.origin, req.headers.host, corsOrigins, isWs)) {
        throw new ApiError('forbidden', `a session is used only by the dashboard's own origin (got Origin ${JSON.stringify(req.headers.origin ?? null)})`);
      }
      if (!allows(p.role, need)) throw new ApiError('forbidden', `this needs an ${need} key (this key is a ${p.role})`);
      req.principal = p;
      req.sessionId = sid;
      return;
    }
    try {
      req.principal = authorize(ring, key, need);
    } catch (err) {
      if (key !== null && (err as ApiError).code === 'unauthorized') failures.fail(req.ip);
      throw err;
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    httpRequests.observe({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  const hub = new LiveHub(deps, log.child({ part: 'ws' }));
  sessionRoutes(app, deps, { ring, failures, sessions, onRevoke: (sid) => hub.closeSession(sid) });
  meRoutes(app, deps);
  seriesRoutes(app, deps);
  alertRoutes(app, deps);
  merchantRoutes(app, deps);
  exposureRoutes(app, deps);
  silenceRoutes(app, deps);
  triageRoutes(app, deps);
  statusRoutes(app, deps);
  deadLetterRoutes(app, deps);
  ruleRoutes(app, deps);
  holdRoutes(app, deps);

  app.get<{ Querystring: { lastEventId?: string } }>('/ws', {
    websocket: true,
    schema: { hide: true },
    preValidation: async (req, reply) => {
      const refused = hub.refusal(req.principal!.keyId);
      if (refused) {
        if (refused.code === 'rate_limited') reply.header('retry-after', '10');
        throw new ApiError(refused.code, refused.message);
      }
      const le = req.query.lastEventId;
      if (le !== undefined && !/^\d{1,18}$/.test(le)) throw new ApiError('bad_request', 'lastEventId must be the eventId of a message received earlier', 'lastEventId');
    },
  }, (socket, req) => {
    const le = req.query.lastEventId;
    void hub.attach(socket, le === undefined ? null : Number(le), { keyId: req.principal!.keyId, sessionId: req.sessionId ?? null });
  });

  const open = { tags: ['operations'], security: [] };
  app.get('/health', {
    schema: { ...open, summary: 'Liveness: the process serves HTTP', response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] } } },
    config: { rateLimit: false, public: true },
  }, async () => ({ status: 'ok' }));
  app.get('/ready', {
    schema: {
      ...open, summary: 'Readiness: the risk store, the source database and Redis answer',
      response: {
        200: { type: 'object', properties: { status: { type: 'string', enum: ['ready'] } }, required: ['status'] },
        503: { type: 'object', properties: { status: { type: 'string', enum: ['unavailable'] }, failed: { type: 'array', items: { type: 'string' } } }, required: ['status', 'failed'] },
      },
    },
    config: { rateLimit: false, public: true },
  }, async (req, reply) => {
    // Each dependency by name, within 2 s; the driver's message goes to the log, never to the (public) answer.
    const within = <T>(p: Promise<T>) => withTimeout(p, 2000, () => new Error('no answer within 2 s'));
    const names = ['risk store', 'source database', 'redis'];
    const checks = await Promise.allSettled([
      within(deps.riskPg.query('SELECT 1')), within(deps.sourcePg.query('SELECT 1')), within(deps.redis.ping()),
    ]);
    const failed = checks.flatMap((c, i) => (c.status === 'rejected' ? [names[i]] : []));
    if (failed.length) req.log.warn({ failed: checks.flatMap((c, i) => (c.status === 'rejected' ? [`${names[i]}: ${(c.reason as Error).message}`] : [])) }, 'not ready');
    return reply.code(failed.length ? 503 : 200).send(failed.length ? { status: 'unavailable', failed } : { status: 'ready' });
  });
  app.get('/metrics', {
    schema: { ...open, summary: 'Prometheus metrics (text exposition format)', response: { 200: { content: { 'text/plain': { schema: { type: 'string' } } } } } },
    config: { rateLimit: false, public: true },
  }, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  if (deps.webDist && existsSync(join(deps.webDist, 'index.html'))) {
    const root = deps.webDist;
    await app.register(publicRoutes(async (pub) => {
      await pub.register(fastifyStatic, { root, prefix: '/', index: 'index.html', cacheControl: true, maxAge: 0 });
    }));
  } else {
    app.get('/', { schema: { hide: true }, config: { public: true } }, async (_req, reply) => reply.code(503).type('text/plain')
      .send('The dashboard is not built. Run `npm run build:web` (vite build web), then restart the API.\n'));
  }
  return { app, hub, routes };
}
