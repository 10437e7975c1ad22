/**
 * API keys (`RISKMON_API_KEYS`, key:role or key:role:name). A presented key is hashed and compared with every
 * configured key's hash in constant time, so neither the comparison nor an early exit tells an attacker how much
 * of a key matched. Roles are ordered: viewer < analyst < admin; a route names the least role it needs.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ROLES, type ApiKey, type Role } from '../lib/config.ts';
import { ApiError } from './errors.ts';

export interface Principal {
  role: Role;
  /**
   * short, non-secret id of the key: an HMAC of the key under a server-side secret (never a prefix of its hash,
   * which would let anyone who sees it test guesses offline)
   */
  keyId: string;
  /** the actor recorded for what this key does: its configured name, else `key <keyId>` */
  name: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest();
const rank = (r: Role) => ROLES.indexOf(r);

export class KeyRing {
  readonly #keys: { hash: Buffer; principal: Principal }[];
  /**
   * `idSecret` keys the HMAC behind key ids (RISKMON_KEY_ID_SECRET). Without one, the ids are keyed by all the
   * configured keys together: stable across restarts and instances, secret to anyone who does not hold every key,
   * but they change when any key is added or removed.
   */
  constructor(keys: readonly ApiKey[], idSecret = '') {
    const secret = idSecret || sha(`riskmon key ids\n${keys.map((k) => k.key).sort().join('\n')}`);
    this.#keys = keys.map((k) => {
      const keyId = keyIdOf(secret, k.key);
      return { hash: sha(k.key), principal: { role: k.role, keyId, name: k.name ?? `key ${keyId}` } };
    });
  }

  get size(): number { return this.#keys.length; }

  /** The principal of a configured key by its id (a session names its key so), or null once the key is gone. */
  byKeyId(keyId: string): Principal | null {
    return this.#keys.find((k) => k.principal.keyId === keyId)?.principal ?? null;
  }

  /** The principal of a key, or null. Always compares against every key. */
  lookup(key: string | undefined | null): Principal | null {
    if (!key) return null;
    const h = sha(key);
    let found: Principal | null = null;
    for (const k of this.#keys) if (timingSafeEqual(h, k.hash) && !found) found = k.principal;
    return found;
  }
}

/** 12 hex digits of HMAC-SHA256(secret, key). */
export function keyIdOf(secret: string | Buffer, key: string): string {
  return createHmac('sha256', secret).update(key).digest('hex').slice(0, 12);
}

/**
 * Failed authentications per client address in a fixed window. An address over `max` failures is refused (429)
 * on every route that needs a key until its window ends, whatever key it presents, so guessing keys gets at most
 * `max` tries per window. At most `maxAddresses` addresses are tracked; when full, expired windows are swept and,
 * if still full, the oldest entry goes (an attacker spraying addresses costs memory only up to that bound).
 */
export class AuthFailures {
  readonly #byAddress = new Map<string, { start: number; count: number }>();
  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly now: () => number = () => performance.now(), // a window's length: elapsed time
    readonly maxAddresses = 100_000,
  ) {}

  /** Milliseconds until `address` may try again, or 0 when it may try now. */
  blockedFor(address: string): number {
    const e = this.#byAddress.get(address);
    if (!e) return 0;
    const left = e.start + this.windowMs - this.now();
    if (left <= 0) { this.#byAddress.delete(address); return 0; }
    return e.count >= this.max ? left : 0;
  }

  fail(address: string): void {
    const t = this.now();
    let e = this.#byAddress.get(address);
    if (e && e.start + this.windowMs <= t) { this.#byAddress.delete(address); e = undefined; }
    if (!e) {
      if (this.#byAddress.size >= this.maxAddresses) this.#sweep(t);
      e = { start: t, count: 0 };
      this.#byAddress.set(address, e);
    }
    e.count++;
  }

  get size(): number { return this.#byAddress.size; }

  #sweep(t: number): void {
    for (const [a, e] of this.#byAddress) if (e.start + this.windowMs <= t) this.#byAddress.delete(a);
    while (this.#byAddress.size >= this.maxAddresses) this.#byAddress.delete(this.#byAddress.keys().next().value!);
  }
}

/** Throws 429 (with Retry-After) while `address` is over its failed-authentication budget. */
export function refuseIfBlocked(failures: AuthFailures, address: string, reply: { header(k: string, v: string): unknown }): void {
  const wait = failures.blockedFor(address);
  if (wait <= 0) return;
  reply.header('retry-after', String(Math.ceil(wait / 1000)));
  throw new ApiError('rate_limited', `too many failed authentications from this address (more than ${failures.max} in ${failures.windowMs / 1000} s); retry later`);
}

export function bearerOf(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

export const allows = (have: Role, need: Role) => rank(have) >= rank(need);

/** Throws 401 without a known key, 403 when the key's role is below `need`. */
export function authorize(ring: KeyRing, key: string | null, need: Role): Principal {
  const p = ring.lookup(key);
  if (!p) throw new ApiError('unauthorized', key ? 'unknown API key' : 'missing API key: send "Authorization: Bearer <key>"');
  if (!allows(p.role, need)) throw new ApiError('forbidden', `this needs an ${need} key (this key is a ${p.role})`);
  return p;
}
