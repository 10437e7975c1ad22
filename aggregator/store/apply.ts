/**
 * Runs apply.lua (EVALSHA through ioredis' defineCommand, which falls back to EVAL once after a SCRIPT FLUSH or
 * a Redis restart): one partition's chunk of bucket deltas plus that partition's next offset, atomically.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type RedisClient } from '../../lib/redis.ts';
import { encodeBucketFields, encodeWindowFields } from './counters.ts';
import { keys, withLayoutNames } from './layout.ts';
import type { Plan } from './plan.ts';

const LUA = withLayoutNames(readFileSync(new URL('./apply.lua', import.meta.url), 'utf8'));

export type ApplyMode = 'live' | 'init' | 'replay';

export type ApplyResult =
  | { status: 'ok' }
  | { status: 'locked'; owner: string }
  /** The stored offset differs from the chunk's first offset; null when none is stored. */
  | { status: 'offset'; stored: string | null };

type ApplyCommand = (numKeys: number, args: string[]) => Promise<string[]>;

export class Applier {
  readonly #cmd: ApplyCommand;
  /**
   * Keys whose TTL this process has set. A key's expiry follows from its name (period end + tier TTL), so it is set
   * once, not on every apply (EXPIREAT was a third of the Lua time). Fields are only ever incremented, so a key
   * never empties and loses its TTL; `forget()` drops everything (after a replay or a partition move).
   */
  #ttlSet = new Set<string>();
  /** partition → replay generation the TTL record is valid for */
  #generation = new Map<number, string>();

  constructor(redis: RedisClient, readonly prefix: string) {
    if (!(redis as any).riskmonApply) redis.defineCommand('riskmonApply', { lua: LUA });
    this.#cmd = (redis as any).riskmonApply.bind(redis);
  }

  forget(): void { this.#ttlSet.clear(); }

  async apply(p: number, plan: Plan, o: { mode: ApplyMode; first: string; next: string; lockToken?: string; windowKeepMinutes: number }): Promise<ApplyResult> {
    const { prefix } = this;
    const ks = [
      keys.offset(prefix, p), keys.watermark(prefix, p), keys.lock(prefix, p),
      keys.merchants(prefix, p), keys.foreign(prefix, p), keys.windowGc(prefix, p), keys.position(prefix, p), keys.generation(prefix, p),
      keys.changed(prefix, p),
    ];
    const args: string[] = [
      o.mode, o.first, o.next, o.lockToken ?? '', plan.watermark === null ? '' : String(plan.watermark),
      keys.windowPrefix(prefix, p), String(o.windowKeepMinutes), plan.position ?? '', this.#generation.get(p) ?? '',
      String(plan.merchants.size), String(plan.foreign.size), String(plan.reread.size),
    ];
    const ttlSet: string[] = [];
    /**
     * The tail of every hash's entry (its header `n, expiry, version` at `at`, then its n fields): a hash whose
     * deltas all netted out is dropped (nothing to write, no TTL to record); else its key is sent, and its expiry
     * only the first time this process writes it.
     */
    const written = (key: string, at: number, n: number) => {
      if (n === 0) { args.length = at; return; }
      ks.push(key);
      args[at] = String(n);
      if (!this.#ttlSet.has(key)) {
        args[at + 1] = String(Math.ceil(plan.expires.get(key)! / 1000));
        ttlSet.push(key);
      }
    };
    // A window-index hash's version (layout.ts WINDOW_VERSION_FIELD): the offset after the chunk. The hash's content
    // at that offset is the sum of the partition's records before it, whatever the chunking, so equal versions mean
    // equal content. Without an offset (not a live apply) a version never seen before.
    const version = o.next !== '' ? o.next : randomUUID();
    for (const [key, hash] of plan.hashes) {
      const at = args.length;
      args.push('', '', hash.kind === 'window' ? version : '');
      let n = 0;
      if (hash.kind === 'window') for (const [m, d] of hash.fields) n += encodeWindowFields(args, m, d);
      else for (const [slot, d] of hash.fields) n += encodeBucketFields(args, Number(slot), d);
      written(key, at, n); // n = 0: every delta netted out (an UPDATE undone in the same chunk)
    }
    for (const [key, fields] of plan.payouts) {
      const at = args.length;
      args.push('', '', '');
      let n = 0;
      for (const [f, d] of fields) if (d !== 0) { args.push(f, String(d)); n++; }
      written(key, at, n);
    }
    for (const m of plan.merchants) args.push(m);
    for (const m of plan.foreign) args.push(m);
    for (const m of plan.reread) args.push(m);
    // ioredis flattens the array: one call, however many arguments (no spread into the call stack)
    const [status, arg] = await this.#cmd(ks.length, ks.concat(args));
    if (status === 'ok') {
      if (this.#ttlSet.size > 300_000) this.#ttlSet.clear(); // bounded memory; forgetting only costs EXPIREATs
      for (const key of ttlSet) this.#ttlSet.add(key);
      return { status };
    }
    if (status === 'generation') {
      this.#generation.set(p, arg);
      this.forget();
      return this.apply(p, plan, o);
    }
    if (status === 'locked') return { status, owner: arg };
    return { status: 'offset', stored: arg === '' ? null : arg };
  }
}
