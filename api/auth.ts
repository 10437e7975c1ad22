/**
 * API keys (`RISKMON_API_KEYS`, key:role). A presented key is hashed and compared with every configured key's hash
 * in constant time, so neither the comparison nor an early exit tells an attacker how much of a key matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKey, Role } from '../lib/config.ts';
import { ApiError } from './errors.ts';

export interface Principal { role: Role; /** short, non-secret id of the key (for created_by) */ keyId: string }

const sha = (s: string) => createHash('sha256').update(s).digest();

export class KeyRing {
  readonly #keys: { hash: Buffer; role: Role; keyId: string }[];
  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => ({ hash: sha(k.key), role: k.role, keyId: sha(k.key).toString('hex').slice(0, 8) }));
  }

  get size(): number { return this.#keys.length; }

  /** The principal of a key, or null. Always compares against every key. */
  lookup(key: string | undefined | null): Principal | null {
    if (!key) return null;
    const h = sha(key);
    let found: Principal | null = null;
    for (const k of this.#keys) if (timingSafeEqual(h, k.hash) && !found) found = { role: k.role, keyId: k.keyId };
    return found;
  }
}

export function bearerOf(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/** Throws 401 without a known key, 403 when the key's role is below `need`. */
export function authorize(ring: KeyRing, key: string | null, need: Role): Principal {
  const p = ring.lookup(key);
  if (!p) throw new ApiError('unauthorized', key ? 'unknown API key' : 'missing API key: send "Authorization: Bearer <key>"');
  if (need === 'admin' && p.role !== 'admin') throw new ApiError('forbidden', 'this needs an admin key');
  return p;
}
