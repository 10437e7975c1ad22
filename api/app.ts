/**
 * The API as a Fastify instance, without a port: plugins, then the auth hook, then routes. Tests build it with
 * their own dependencies and call `inject()`; server.ts listens.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
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
import { authorize, bearerOf, KeyRing, type Principal } from './auth.ts';
import type { ApiDeps } from './deps.ts';
import { ApiError, errorHandler } from './errors.ts';
import { httpRequests } from './metrics.ts';
import { alertRoutes } from './routes/alerts.ts';
import { deadLetterRoutes } from './routes/deadletters.ts';
import { meRoutes } from './routes/me.ts';
import { merchantRoutes } from './routes/merchants.ts';
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
  interface FastifyRequest { principal?: Principal }
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
  const ring = new KeyRing(cfg.apiKeys);
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines would flood the log at dashboard polling rates; the request histogram covers them.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: cfg.bodyLimit,
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
    await app.register(cors, { origin: cfg.corsOrigins.split(',').map((s) => s.trim()).filter(Boolean) });
  }
  if (cfg.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: cfg.rateLimitMax,
      timeWindow: cfg.rateLimitWindowMs,
      // Per key when one is presented (hashed: the limiter's store must not hold keys), else per address.
      keyGenerator: (req) => {
        const k = bearerOf(req.headers.authorization) ?? (req.query as { token?: string })?.token;
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
  app.addHook('onRequest', async (req) => {
    const route = req.routeOptions;
    if (route.url === undefined || route.config?.public === true) return;
    const key = route.url === '/ws' ? (req.query as { token?: string }).token ?? bearerOf(req.headers.authorization) : bearerOf(req.headers.authorization);
    req.principal = authorize(ring, key ?? null, route.config?.role ?? 'viewer');
  });
  app.addHook('onResponse', async (req, reply) => {
    httpRequests.observe({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  meRoutes(app, deps);
  seriesRoutes(app, deps);
  alertRoutes(app, deps);
  merchantRoutes(app, deps);
  silenceRoutes(app, deps);
  triageRoutes(app, deps);
  statusRoutes(app, deps);
  deadLetterRoutes(app, deps);
  ruleRoutes(app, deps);

  const hub = new LiveHub(deps, log.child({ part: 'ws' }));
  app.get<{ Querystring: { token?: string; lastEventId?: string } }>('/ws', {
    websocket: true,
    schema: { hide: true },
    preValidation: async (req) => {
      const le = req.query.lastEventId;
      if (le !== undefined && !/^\d{1,18}$/.test(le)) throw new ApiError('bad_request', 'lastEventId must be the eventId of a message received earlier', 'lastEventId');
    },
  }, (socket, req) => {
    const le = req.query.lastEventId;
    void hub.attach(socket, le === undefined ? null : Number(le));
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
  }, async (_req, reply) => {
    const checks = await Promise.allSettled([
      deps.riskPg.query('SELECT 1'), deps.sourcePg.query('SELECT 1'), deps.redis.ping(),
    ]);
    const names = ['risk store', 'source database', 'redis'];
    const failed = checks.flatMap((c, i) => (c.status === 'rejected' ? [`${names[i]}: ${(c.reason as Error).message}`] : []));
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
