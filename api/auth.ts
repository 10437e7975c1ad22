/**
 * API keys (`RISKMON_API_KEYS`, key:role or key:role:name). A presented key is hashed and compared with every
 * configured key's hash in constant time, so neither the comparison nor an early exit tells an attacker how much
 * of a key matched. Roles are ordered: viewer < analyst < admin; a route names the least role it needs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ROLES, type ApiKey, type Role } from '../lib/config.ts';
import { ApiError } from './errors.ts';

export interface Principal {
  role: Role;
  /** short, non-secret id of the key */
  keyId: string;
  /** the actor recorded for what this key does: its configured name, else `key <keyId>` */
  name: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest();
const rank = (r: Role) => ROLES.indexOf(r);

export class KeyRing {
  readonly #keys: { hash: Buffer; principal: Principal }[];
  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => {
      const keyId = sha(k.key).toString('hex').slice(0, 8);
      return { hash: sha(k.key), principal: { role: k.role, keyId, name: k.name ?? `key ${keyId}` } };
    });
  }

  get size(): number { return this.#keys.length; }

  /** The principal of a key, or null. Always compares against every key. */
  lookup(key: string | undefined | null): Principal | null {
    if (!key) return null;
    const h = sha(key);
    let found: Principal | null = null;
    for (const k of this.#keys) if (timingSafeEqual(h, k.hash) && !found) found = k.principal;
    return found;
  }
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
