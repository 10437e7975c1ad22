/**
 * The read side of the store in Redis: two read-only Lua scripts and a chunked pipeline runner.
 *
 * Hashes are read through a small script that returns each call's hashes as ONE string ("f\0v\0f\0v…" per hash,
 * optionally only the fields of a slot range, hashes joined by \x01): the client decodes a few strings instead of
 * thousands of RESP bulk strings (that decoding was most of a read's CPU). Neither byte occurs in a field or value
 * (merchant ids are validated: lib/mapping.ts MERCHANT_ID_PATTERN; the rest are numbers).
 */
import { pipelined, type RedisClient } from '../../lib/redis.ts';
import { withLayoutNames } from './layout.ts';

/** Keys per script call: bounds how long one call holds Redis and the size of one reply. */
export const KEYS_PER_CALL = 500;
/** Commands per pipeline round trip: bounds client memory on 100,000-merchant reads. */
const PIPELINE_CHUNK = 2_000;

// KEYS: hashes; ARGV[1]: '' (every key whole) or per key 'lo:hi' (field numbers, inclusive), comma-separated.
// Returns per key the kept fields and values joined by NUL, the keys' parts joined by \1 into strings of about 1 MiB
// (a reply of a few strings is decoded at once, where hundreds cost the client per element, as hundreds of arguments
// do; a string per MiB keeps each far below the client's largest string).
// A range much smaller than the hash is read with HMGET (a 2-hour minute series out of a 6-hour quarter), otherwise
// HGETALL and a filter: Lua's cost is per string.
const HASHES_LUA = `
local los, his, chunks, cur, size = {}, {}, {}, {}, 0
for lo, hi in string.gmatch(ARGV[1], '(-?%d+):(-?%d+)') do los[#los + 1] = tonumber(lo); his[#his + 1] = tonumber(hi) end
for i, k in ipairs(KEYS) do
  local n, part = redis.call('HLEN', k), ''
  if n > 0 and los[i] == nil then
    part = table.concat(redis.call('HGETALL', k), '\0')
  elseif n > 0 then
    local lo, hi, parts, m = los[i], his[i], {}, 0
    if hi < lo then
      -- nothing of this hash is in the range
    elseif (hi - lo + 1) * 2 < n then
      local fs = {}
      for f = lo, hi do fs[f - lo + 1] = f end
      local vs = redis.call('HMGET', k, unpack(fs))
      for j = 1, hi - lo + 1 do
        if vs[j] then parts[m + 1] = fs[j]; parts[m + 2] = vs[j]; m = m + 2 end
      end
    else
      local h = redis.call('HGETALL', k)
      for j = 1, #h, 2 do
        local f = tonumber(h[j])
        if f >= lo and f <= hi then parts[m + 1] = h[j]; parts[m + 2] = h[j + 1]; m = m + 2 end
      end
    end
    part = table.concat(parts, '\0')
  end
  if #cur > 0 and size + #part > 1048576 then chunks[#chunks + 1] = table.concat(cur, '\\1'); cur = {}; size = 0 end
  cur[#cur + 1] = part
  size = size + #part + 1
end
chunks[#chunks + 1] = table.concat(cur, '\\1')
return chunks`;

/** A read of hashes (at most KEYS_PER_CALL): each whole, or per key only its fields `lo`..`hi`. */
export function readHashes(keys: readonly string[], ranges?: readonly { lo: number; hi: number }[]): Cmd {
  return ['riskmonReadHashes', keys.length, ...keys, ranges ? ranges.map((r) => `${r.lo}:${r.hi}`).join(',') : ''];
}

/** A `readHashes` reply: per key its kept fields and values joined by NUL ('' for none). */
export function hashesOf(reply: unknown, keys: number): string[] {
  const parts = (reply as string[]).flatMap((chunk) => chunk.split('\x01'));
  if (parts.length !== Math.max(1, keys)) throw new Error(`a hash read returned ${parts.length} parts for ${keys} keys`);
  return keys ? parts : [];
}

// KEYS: 1 window-index GC cursor, 2 replay generation, 3 watermark, 4.. index hashes; ARGV: 1 oldest minute asked
// for, then per key its minute number and the caller's known fingerprint. Returns {'gone'} when the GC passed that
// minute, else per key: fingerprint, 'u' (unchanged: no content) | 'f' (content: the whole hash) | 'd' (content: the
// merchants written since the known fingerprint, each with its four counters, '0' when absent).
// The fingerprint is the replay generation and the hash's version (layout.ts WINDOW_VERSION_FIELD), written by every
// live apply: one HGET, however large the hash; '/s' is appended once the partition's watermark passed the minute's
// end (and no rebuild marked the hash): from then on every write to it is in its late log (apply.lua), so a caller
// holding a '/s' fingerprint gets only the merchants logged after its version. A hash without a version (rebuilt by
// a replay, or written before versions existed) is fingerprinted by the length and CRC-64 of its DUMP.
const WINDOW_LUA = `
local gc = redis.call('GET', KEYS[1])
if gc and tonumber(gc) > tonumber(ARGV[1]) then return {'gone'} end
local gen = redis.call('GET', KEYS[2]) or ''
local wm = tonumber(redis.call('GET', KEYS[3]) or '-1')
local out = {}
for i = 4, #KEYS do
  local k, fp, minute, known = KEYS[i], '', tonumber(ARGV[2 * i - 6]), ARGV[2 * i - 5]
  local v = redis.call('HGET', k, '$WINDOW_VERSION_FIELD')
  local sealed = false
  if v then
    fp = gen .. '/' .. v
    sealed = tonumber(v) ~= nil and wm >= (minute + 1) * 60000 and redis.call('HEXISTS', k, '$WINDOW_REBUILT_FIELD') == 0
  else
    local d = redis.call('DUMP', k)
    if d then
      local c = {string.byte(d, -8, -1)}
      fp = string.format('%d:%02x%02x%02x%02x%02x%02x%02x%02x', #d, c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8])
    end
  end
  local base, kbase = fp, known
  local ks = string.sub(known, -2) == '/s'
  if ks then kbase = string.sub(known, 1, -3) end
  if sealed then fp = fp .. '/s' end
  local j = 3 * i - 11
  out[j] = fp
  if base == kbase then
    out[j + 1] = 'u'; out[j + 2] = ''
  elseif base == '' then
    out[j + 1] = 'f'; out[j + 2] = ''
  else
    local kgen, kv = string.match(kbase, '^(.*)/([^/]*)$')
    local ms = nil
    if ks and sealed and kgen == gen and tonumber(kv) and tonumber(v) >= tonumber(kv) then
      ms = redis.call('ZRANGEBYSCORE', k .. '$WINDOW_LATE_SUFFIX', '(' .. kv, '+inf')
      if #ms * 4 > redis.call('HLEN', k) then ms = nil end
    end
    if ms then
      local parts = {}
      for x = 1, #ms, 100 do
        local fs = {}
        for y = x, math.min(x + 99, #ms) do
          local m = ms[y]
          fs[#fs + 1] = 'n:' .. m; fs[#fs + 1] = 'a:' .. m; fs[#fs + 1] = 'c:' .. m; fs[#fs + 1] = 'x:' .. m
        end
        local vs = redis.call('HMGET', k, unpack(fs))
        for y = 1, #fs do parts[#parts + 1] = fs[y]; parts[#parts + 1] = vs[y] or '0' end
      end
      out[j + 1] = 'd'; out[j + 2] = table.concat(parts, '\\0')
    else
      out[j + 1] = 'f'; out[j + 2] = table.concat(redis.call('HGETALL', k), '\\0')
    end
  end
end
return out`;

export type Cmd = [name: string, ...args: (string | number)[]];

export function defineScripts(redis: RedisClient): void {
  if (!(redis as any).riskmonReadHashes) redis.defineCommand('riskmonReadHashes', { lua: HASHES_LUA });
  if (!(redis as any).riskmonReadWindow) redis.defineCommand('riskmonReadWindow', { lua: withLayoutNames(WINDOW_LUA) });
}

export async function run(redis: RedisClient, cmds: Cmd[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < cmds.length; i += PIPELINE_CHUNK) {
    const chunk = cmds.slice(i, i + PIPELINE_CHUNK);
    let res = await exec(redis, chunk);
    // Scripts flushed on the server (SCRIPT FLUSH, a restarted Redis): ioredis then sends them with EVAL again.
    if (res.some(([err]) => err && /NOSCRIPT/.test(err.message))) res = await exec(redis, chunk);
    for (const [err, v] of res) {
      if (err) throw err;
      out.push(v);
    }
  }
  return out;
}

/** One round trip (one per partition tag on a Redis Cluster: a pipeline must stay on one node). */
function exec(redis: RedisClient, cmds: Cmd[]): Promise<[Error | null, unknown][]> {
  return pipelined(redis, cmds);
}
