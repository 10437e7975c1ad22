-- Applies one partition's pre-aggregated chunk and advances that partition's offset, atomically.
-- KEYS: 1 offset, 2 watermark, 3 replay lock, 4 merchant set, 5 foreign set, 6 window-index GC cursor,
--       7 last applied change position (lsn/seq), 8 generation (bumped by every replay), 9.. bucket hashes
-- ARGV: 1 mode (live|init|replay), 2 first offset of the chunk, 3 next offset ('' = leave), 4 lock token,
--       5 watermark candidate ('' = none), 6 window-index key prefix, 7 window minutes kept, 8 n hash ops,
--       9 position of the chunk's last change ('' = leave), 10 generation the caller's TTL record is valid for,
--       then n ops × (key index, field, delta "a,aa" or "a,aa,c,ca"),
--       then expiries: count, count × (key index, unix seconds) — only keys whose TTL the caller has not set yet,
--       then merchants: count, names, then foreign merchants: count, names
-- Returns {'ok', emptied keys…} | {'locked', owner} | {'offset', stored or ''} | {'generation', current}.
-- Numbers stay below 2^53 and are written with %d: Lua 5.1's tostring prints large doubles as 1e+15.
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
if gen ~= ARGV[10] then return {'generation', gen} end

local call, tonumber, find, sub, format = redis.call, tonumber, string.find, string.sub, string.format

-- "a,aa" or "a,aa,c,ca" → four numbers
local function unpack4(v)
  local p1 = find(v, ',', 1, true)
  local p2 = find(v, ',', p1 + 1, true)
  if not p2 then return tonumber(sub(v, 1, p1 - 1)), tonumber(sub(v, p1 + 1)), 0, 0 end
  local p3 = find(v, ',', p2 + 1, true)
  return tonumber(sub(v, 1, p1 - 1)), tonumber(sub(v, p1 + 1, p2 - 1)), tonumber(sub(v, p2 + 1, p3 - 1)), tonumber(sub(v, p3 + 1))
end

local emptied = {}
local i = 11
local n = tonumber(ARGV[8])
for _ = 1, n do
  local key = KEYS[tonumber(ARGV[i])]
  local field = ARGV[i + 1]
  local a, aa, c, ca = unpack4(ARGV[i + 2])
  i = i + 3
  local cur = call('HGET', key, field)
  if cur then
    local x1, x2, x3, x4 = unpack4(cur)
    a, aa, c, ca = a + x1, aa + x2, c + x3, ca + x4
  end
  if a == 0 and aa == 0 and c == 0 and ca == 0 then
    if cur then
      call('HDEL', key, field)
      if call('EXISTS', key) == 0 then emptied[#emptied + 1] = key end
    end
  elseif c == 0 and ca == 0 then
    call('HSET', key, field, format('%d,%d', a, aa))
  else
    call('HSET', key, field, format('%d,%d,%d,%d', a, aa, c, ca))
  end
end

n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('EXPIREAT', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  i = i + 2
end

for _, setKey in ipairs({KEYS[4], KEYS[5]}) do
  n = tonumber(ARGV[i]); i = i + 1
  local j = 0
  while j < n do
    local k = math.min(n - j, 500)
    redis.call('SADD', setKey, unpack(ARGV, i + j, i + j + k - 1))
    j = j + k
  end
  i = i + n
end

if ARGV[5] ~= '' then
  local old = redis.call('GET', KEYS[2])
  if not old or tonumber(old) < tonumber(ARGV[5]) then redis.call('SET', KEYS[2], ARGV[5]) end
end

-- The all-merchants minute index keeps `keep` minutes behind the partition's watermark (event time), so a
-- replay of old history does not fill Redis with it. At most a day of minutes is deleted per call; anything
-- skipped by a jump expires by its wall-clock TTL.
local wm = redis.call('GET', KEYS[2])
if wm then
  local horizon = math.floor(tonumber(wm) / 60000) - tonumber(ARGV[7])
  local gc = redis.call('GET', KEYS[6])
  if not gc then
    redis.call('SET', KEYS[6], string.format('%d', horizon))
  elseif horizon > tonumber(gc) then
    local stop = math.min(horizon, tonumber(gc) + 1440)
    for m = tonumber(gc), stop - 1 do redis.call('DEL', ARGV[6] .. string.format('%d', m)) end
    redis.call('SET', KEYS[6], string.format('%d', horizon))
  end
end

if ARGV[9] ~= '' then redis.call('SET', KEYS[7], ARGV[9]) end
if ARGV[3] ~= '' then redis.call('SET', KEYS[1], ARGV[3]) end
-- keys that lost their last field (and so their TTL): the caller must set the TTL again when they come back
return {'ok', unpack(emptied)}
