/**
 * Dashboard sessions: the browser exchanges an API key once (POST /api/session) for a random session id in an
 * HttpOnly, SameSite=Strict cookie, so no key sits in a URL, in history or in localStorage. Sessions live in Redis,
 * so every API instance behind a load balancer knows them:
 *
 *   {<prefix>:sessions}:s:<sha256(id)>   → the key id (HMAC) the session was made from, expiring with the session
 *   {<prefix>:sessions}:k:<keyId>        → sorted set of that key's session hashes by expiry
 *
 * Only the hash of an id is stored (a Redis dump holds no usable cookie). The session carries no role of its own:
 * every request resolves the key id against the configured keys, so removing or re-roling a key ends or changes its
 * sessions at once. Each key holds at most `maxPerKey` sessions (the oldest is revoked), so their number is bounded
 * by the number of keys. One hash tag keeps a key's index and its sessions in one Redis Cluster slot (MULTI).
 */
import { createHash, randomBytes } from 'node:crypto';
import { systemClock } from '../lib/clock.ts';
import type { RedisClient } from '../lib/redis.ts';

export const SESSION_COOKIE = 'riskmon_session';

export interface SessionOptions { prefix: string; ttlMs: number; maxPerKey: number; now?: () => number }

const hashOf = (id: string) => createHash('sha256').update(id).digest('hex');

export class Sessions {
  readonly #now: () => number;
  constructor(private readonly redis: RedisClient, private readonly opts: SessionOptions) { this.#now = opts.now ?? systemClock; } // a sign-in's real lifetime (Redis expires it in real time too)

  #tag(): string { return `{${this.opts.prefix}:sessions}`; }
  #sessionKey(hash: string): string { return `${this.#tag()}:s:${hash}`; }
  #indexKey(keyId: string): string { return `${this.#tag()}:k:${keyId}`; }

  /** A new session of the key `keyId`; revokes that key's oldest sessions beyond `maxPerKey`. */
  async create(keyId: string): Promise<{ id: string; expiresAt: number }> {
    const id = randomBytes(32).toString('base64url');
    const hash = hashOf(id);
    const now = this.#now();
    const expiresAt = now + this.opts.ttlMs;
    const index = this.#indexKey(keyId);
    await this.redis.multi()
      .set(this.#sessionKey(hash), keyId, 'PX', this.opts.ttlMs)
      .zremrangebyscore(index, '-inf', now)
      .zadd(index, expiresAt, hash)
      .pexpire(index, this.opts.ttlMs)
      .exec();
    const excess = (await this.redis.zcard(index)) - this.opts.maxPerKey;
    if (excess > 0) {
      const oldest = await this.redis.zrange(index, '0', String(excess - 1));
      if (oldest.length) await this.redis.multi().zrem(index, ...oldest).del(...oldest.map((h) => this.#sessionKey(h))).exec();
    }
    return { id, expiresAt };
  }

  /** The key id of a live session, or null (unknown, expired, revoked). */
  async keyIdOf(id: string): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    return this.redis.get(this.#sessionKey(hashOf(id)));
  }

  async revoke(id: string): Promise<void> {
    const hash = hashOf(id);
    const keyId = await this.redis.get(this.#sessionKey(hash));
    if (keyId === null) return;
    await this.redis.multi().del(this.#sessionKey(hash)).zrem(this.#indexKey(keyId), hash).exec();
  }

  /** Live sessions of a key (the index trimmed of expired ones first). */
  async count(keyId: string): Promise<number> {
    const index = this.#indexKey(keyId);
    await this.redis.zremrangebyscore(index, '-inf', this.#now());
    return this.redis.zcard(index);
  }
}

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieOf(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The Set-Cookie value for a session id (or, with `id` null, one that deletes the cookie). */
export function sessionCookie(id: string | null, maxAgeMs: number, secure: boolean): string {
  const attrs = [`${SESSION_COOKIE}=${id ?? ''}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${id ? Math.floor(maxAgeMs / 1000) : 0}`];
  if (secure) attrs.push('Secure');
  return attrs.join('; ');
}
