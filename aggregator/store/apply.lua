-- Applies one partition's pre-aggregated chunk and advances that partition's offset, atomically.
-- KEYS: 1 offset, 2 watermark, 3 replay lock, 4 merchant set, 5 foreign set, 6 window-index GC cursor,
--       7 last applied change position (lsn:seq), 8 generation (bumped by every replay), 9 changed-merchant index,
--       10.. hashes (tier buckets, window-index hashes and payout hashes: every one a HINCRBY of its fields)
-- ARGV: 1 mode (live|init|replay), 2 first offset of the chunk, 3 next offset ('' = leave), 4 lock token,
--       5 watermark candidate ('' = none), 6 window-index key prefix, 7 window minutes kept,
--       8 position of the chunk's last change ('' = leave), 9 generation the caller's TTL record is valid for,
--       10 number of merchants m, 11 number of foreign merchants f, 12 number of merchants to re-read r,
--       then for each bucket hash KEYS[9..] in order: n, expiry (unix seconds, '' = TTL already set), version
--         ('' = none; a window-index hash gets it in its field layout.ts WINDOW_VERSION_FIELD), n × (field, x)
--         — HINCRBY field x; fields are final (slot*4+kind in the tiers, 'n:'|'a:'|'c:'|'x:'..merchant in the
--         window index), only non-zero deltas are sent, so Lua does no string work per field,
--       (a window-index hash written after its minute ended, by the watermark before the chunk, also logs its
--       merchants in its late log with the version, or, without an offset, gets WINDOW_REBUILT_FIELD),
--       then m merchant names, then f foreign merchant names, then r merchant names scored with the next offset in
--       the changed-merchant index (when one is given): a late fact or a payout change (plan.ts `reread`).
-- Returns {'ok'} | {'locked', owner} | {'offset', stored or ''} | {'generation', current}.
-- HINCRBY keeps exact 64-bit integers in Redis: no parsing or number formatting in Lua.
local lock = redis.call('GET', KEYS[3])
if lock and lock ~= ARGV[4] then return {'locked', lock} end
local mode = ARGV[1]
if mode ~= 'replay' then
  local stored = redis.call('GET', KEYS[1])
  if stored then
    if stored ~= ARGV[2] then return {'offset', stored} end
  elseif mode ~= 'init' then
    return {'offset', ''}
  end
end
-- A replay deleted and rebuilt keys: the caller's record of which keys have their TTL is void.
local gen = redis.call('GET', KEYS[8]) or ''
if gen ~= ARGV[9] then return {'generation', gen} end

local call, tonumber = redis.call, tonumber
-- The partition's watermark before this chunk: a window-index hash written after its minute ended (by this
-- watermark) is a late write, logged per merchant with the write's version (layout.ts WINDOW_LATE_SUFFIX), so a
-- reader that read the hash once the minute had ended re-reads only the merchants written since.
local wm0 = tonumber(call('GET', KEYS[2]) or '-1')
local i = 13
for k = 10, #KEYS do
  local key, n, exp, version = KEYS[k], tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  for j = i, i + 2 * n - 1, 2 do call('HINCRBY', key, ARGV[j], ARGV[j + 1]) end
  if version ~= '' then
    call('HSET', key, '$WINDOW_VERSION_FIELD', version)
    local minute = tonumber(string.match(key, ':(%d+)$'))
    if minute and wm0 >= (minute + 1) * 60000 then
      if tonumber(version) then
        local log = key .. '$WINDOW_LATE_SUFFIX'
        local j, last = i, i + 2 * n - 1
        while j <= last do
          local zs, e = {}, math.min(j + 999, last)
          for x = j, e, 2 do zs[#zs + 1] = version; zs[#zs + 1] = string.sub(ARGV[x], 3) end
          call('ZADD', log, unpack(zs))
          j = e + 1
        end
        local ttl = call('PTTL', key)
        if ttl > 0 then call('PEXPIRE', log, ttl) end
      else
        call('HSET', key, '$WINDOW_REBUILT_FIELD', '1')
      end
    end
  end
  i = i + 2 * n
  if exp ~= '' then call('EXPIREAT', key, exp) end
end

for s = 4, 5 do
  local n = tonumber(ARGV[s + 6])
  local j = 0
  while j < n do
    local k = math.min(n - j, 500)
    call('SADD', KEYS[s], unpack(ARGV, i + j, i + j + k - 1))
    j = j + k
  end
  i = i + n
end
if ARGV[3] ~= '' then
  local n = tonumber(ARGV[12])
  local j = 0
  while j < n do
    local k = math.min(n - j, 500)
    local zs = {}
    for x = 0, k - 1 do zs[2 * x + 1] = ARGV[3]; zs[2 * x + 2] = ARGV[i + j + x] end
    call('ZADD', KEYS[9], unpack(zs))
    j = j + k
  end
end

if ARGV[5] ~= '' then
  local old = call('GET', KEYS[2])
  if not old or tonumber(old) < tonumber(ARGV[5]) then call('SET', KEYS[2], ARGV[5]) end
end

-- The all-merchants minute index keeps `keep` minutes behind the partition's watermark (event time), so a
-- replay of old history does not fill Redis with it. At most a day of minutes is deleted per call; anything
-- skipped by a jump expires by its wall-clock TTL.
local wm = call('GET', KEYS[2])
if wm then
  local horizon = math.floor(tonumber(wm) / 60000) - tonumber(ARGV[7])
  local gc = call('GET', KEYS[6])
  if not gc then
    call('SET', KEYS[6], string.format('%d', horizon))
  elseif horizon > tonumber(gc) then
    local stop = math.min(horizon, tonumber(gc) + 1440)
    for m = tonumber(gc), stop - 1 do
      local k = ARGV[6] .. string.format('%d', m)
      call('DEL', k, k .. '$WINDOW_LATE_SUFFIX')
    end
    call('SET', KEYS[6], string.format('%d', horizon))
  end
end

if ARGV[8] ~= '' then call('SET', KEYS[7], ARGV[8]) end
if ARGV[3] ~= '' then call('SET', KEYS[1], ARGV[3]) end
return {'ok'}
