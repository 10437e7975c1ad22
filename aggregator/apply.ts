/**
 * Runs apply.lua (EVALSHA through ioredis' defineCommand, which falls back to EVAL once after a SCRIPT FLUSH or
 * a Redis restart): one partition's chunk of bucket deltas plus that partition's next offset, atomically.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { keys } from './layout.ts';
import type { Plan } from './plan.ts';

const LUA = readFileSync(new URL('./apply.lua', import.meta.url), 'utf8');

export type ApplyMode = 'live' | 'init' | 'replay';

export type ApplyResult =
  | { status: 'ok' }
  | { status: 'locked'; owner: string }
  /** The stored offset differs from the chunk's first offset; null when none is stored. */
  | { status: 'offset'; stored: string | null };

type ApplyCommand = (numKeys: number, args: string[]) => Promise<string[]>;

export class Applier {
  readonly #cmd: ApplyCommand;

  constructor(redis: Redis, readonly prefix: string) {
    if (!(redis as any).riskmonApply) redis.defineCommand('riskmonApply', { lua: LUA });
    this.#cmd = (redis as any).riskmonApply.bind(redis);
  }

  async apply(p: number, plan: Plan, o: { mode: ApplyMode; first: string; next: string; lockToken?: string; windowKeepMinutes: number }): Promise<ApplyResult> {
    const { prefix } = this;
    const ks = [
      keys.offset(prefix, p), keys.watermark(prefix, p), keys.lock(prefix, p),
      keys.merchants(prefix, p), keys.foreign(prefix, p), keys.windowGc(prefix, p), keys.position(prefix, p),
    ];
    const args: string[] = [
      o.mode, o.first, o.next, o.lockToken ?? '', plan.watermark === null ? '' : String(plan.watermark),
      keys.windowPrefix(prefix, p), String(o.windowKeepMinutes), '0', plan.position ?? '',
    ];
    let ops = 0;
    const exp: string[] = [];
    for (const [key, fields] of plan.hashes) {
      ks.push(key);
      const idx = String(ks.length);
      for (const [field, d] of fields) {
        if (d.a === 0 && d.aa === 0n && d.c === 0 && d.ca === 0n) continue;
        args.push(idx, field, String(d.a), d.aa.toString(), String(d.c), d.ca.toString());
        ops++;
      }
      exp.push(idx, String(Math.ceil(plan.expires.get(key)! / 1000)));
    }
    args[7] = String(ops);
    args.push(String(exp.length / 2));
    for (const x of exp) args.push(x);
    args.push(String(plan.merchants.size));
    for (const m of plan.merchants) args.push(m);
    args.push(String(plan.foreign.size));
    for (const m of plan.foreign) args.push(m);
    // ioredis flattens the array: one call, however many arguments (no spread into the call stack)
    const [status, arg] = await this.#cmd(ks.length, ks.concat(args));
    if (status === 'ok') return { status };
    if (status === 'locked') return { status, owner: arg };
    return { status: 'offset', stored: arg === '' ? null : arg };
  }
}
