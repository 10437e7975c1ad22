/**
 * Which aggregator consumes which partition, without a Kafka consumer group. Every running aggregator registers
 * itself in `<P>:aggregators` (a sorted set: member id → expiry in Redis' own clock) every second; a member not
 * renewed for `ttlMs` is dropped by the next registration of anyone. Partition p belongs to the live member at
 * index p mod n of the members sorted by id (`assign`). Two members may briefly both consume a partition while it
 * moves (each sees the new member list at its own next renewal): the apply is exact regardless, because apply.lua
 * applies a chunk only when its first offset equals the partition's stored offset.
 *
 * A restarted process should not wait `ttlMs` for its dead predecessor to expire: a member id names its host and
 * pid (`<host>/<pid>/<random>`), and a registration drops the members of the same host whose process is gone (the
 * caller says which: `alive`) — including one with its own pid (a container restarted as pid 1 again).
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.ts';
import { keys } from './layout.ts';

const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
local ttl = tonumber(ARGV[2])
if ttl <= 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 10)
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

/** The partitions of `members` (any order) that belong to `me`: p where the sorted members' p mod n-th is me (pure). */
export function assign(members: readonly string[], me: string, partitions: number): number[] {
  const sorted = [...new Set(members)].sort();
  if (!sorted.includes(me)) sorted.push(me), sorted.sort();
  const i = sorted.indexOf(me);
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) if (p % sorted.length === i) out.push(p);
  return out;
}

/** `<host>/<pid>/<random>` (pure but for the random part). */
export function memberId(host = os.hostname(), pid = process.pid): string {
  return `${host}/${pid}/${randomBytes(4).toString('hex')}`;
}

/** Members of this host (by id) whose process is gone: `alive(pid)` false, or our own pid under another id. */
export function deadOnThisHost(members: readonly string[], me: string, alive: (pid: number) => boolean): string[] {
  const [host, pidText] = me.split('/');
  return members.filter((m) => {
    if (m === me) return false;
    const [h, p] = m.split('/');
    if (h !== host || !/^\d+$/.test(p ?? '')) return false;
    return p === pidText || !alive(Number(p));
  });
}

export function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

export class Membership {
  readonly id: string;

  constructor(private readonly redis: RedisClient, private readonly prefix: string, readonly ttlMs: number, id = memberId()) {
    this.id = id;
    if (!(redis as any).riskmonMembers) redis.defineCommand('riskmonMembers', { lua: RENEW, numberOfKeys: 1 });
  }

  /** Registers (or renews) this member; returns every live member's id. */
  async renew(): Promise<string[]> {
    const call = (...drop: string[]) => (this.redis as any).riskmonMembers(keys.members(this.prefix), this.id, String(this.ttlMs), ...drop) as Promise<string[]>;
    const got = await call();
    const dead = deadOnThisHost(got, this.id, processAlive);
    return dead.length ? call(...dead) : got;
  }

  /** Leaves at once (a clean stop): the others take the partitions over at their next renewal. */
  async leave(): Promise<void> {
    await (this.redis as any).riskmonMembers(keys.members(this.prefix), this.id, '0');
  }
}
