import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { refuseIfBlocked, type AuthFailures, type KeyRing } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { ErrorBody } from '../schemas.ts';
import { cookieOf, SESSION_COOKIE, sessionCookie, type Sessions } from '../sessions.ts';

export interface SessionAuth {
  ring: KeyRing;
  failures: AuthFailures;
  sessions: Sessions;
  /** Called with a session id that was just ended (its live WebSocket connections close). */
  onRevoke(sessionId: string): void;
}

const SessionBody = Type.Object({
  role: Type.String(), name: Type.String({ description: 'the actor recorded for this key' }), expiresAt: Type.String({ format: 'date-time' }),
});

/** HTTPS as the browser sees it: TLS here, or ended by a proxy in front that says so. */
const overHttps = (req: FastifyRequest) => req.protocol === 'https' || /^https(,|$)/i.test(String(req.headers['x-forwarded-proto'] ?? '').trim());

/**
 * Sign-in and sign-out of the dashboard. Both are reachable without a session (that is their point); sign-in checks
 * the key itself under the same failed-authentication limit as every other route.
 */
export function sessionRoutes(app: FastifyInstance, deps: ApiDeps, auth: SessionAuth): void {
  const ttl = deps.cfg.sessionTtlMs;
  app.post<{ Body: { key: string } }>('/api/session', {
    schema: {
      summary: 'Exchange an API key for a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS): how the dashboard signs in',
      tags: ['session'], security: [],
      body: Type.Object({ key: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }),
      response: { 200: SessionBody, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody },
    },
    config: { public: true },
  }, async (req, reply) => {
    refuseIfBlocked(auth.failures, req.ip, reply);
    const p = auth.ring.lookup(req.body.key);
    if (!p) {
      auth.failures.fail(req.ip);
      throw new ApiError('unauthorized', 'unknown API key');
    }
    const s = await auth.sessions.create(p.keyId);
    req.log.info({ keyId: p.keyId }, 'session started');
    reply.header('set-cookie', sessionCookie(s.id, ttl, overHttps(req))).header('cache-control', 'no-store');
    return { role: p.role, name: p.name, expiresAt: new Date(s.expiresAt).toISOString() };
  });

  app.delete('/api/session', {
    schema: { summary: 'Sign out: ends the session of the cookie presented and deletes the cookie', tags: ['session'], security: [], response: { 204: Type.Null() } },
    config: { public: true },
  }, async (req, reply) => {
    const sid = cookieOf(req.headers.cookie, SESSION_COOKIE);
    if (sid) {
      await auth.sessions.revoke(sid);
      auth.onRevoke(sid);
    }
    return reply.code(204).header('set-cookie', sessionCookie(null, 0, overHttps(req))).send();
  });
}
