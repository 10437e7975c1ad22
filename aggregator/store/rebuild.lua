-- Writes a replay's rebuilt buckets: the reset range holds nothing, so the replay sums the whole range in memory
-- and sets each field's final value (HSET, many fields per call) instead of the live path's per-fact HINCRBY.
-- KEYS: 1 replay lock, 2.. bucket hashes
-- ARGV: 1 lock token, 2 this call's version (unique per call), then for each hash KEYS[2..] in order: mode
--       ('s' = the hash's fields are final: HSET; 'i' = an earlier write of this replay may have set some: HINCRBY,
--       or HSET when the hash does not exist;
--       'S' / 'I' the same for a window-index hash, which also gets the call's version in its field WINDOW_VERSION_FIELD),
--       n, expiry (unix seconds, '' = none; the same for every write of a key), n × (field, value).
-- Returns {'ok'} | {'locked', owner}: a replay that lost its lock (another one took over with --force) writes nothing.
local lock = redis.call('GET', KEYS[1])
if lock ~= ARGV[1] then return {'locked', lock or ''} end
local call, tonumber, unpack, min = redis.call, tonumber, unpack, math.min
local i = 3
for k = 2, #KEYS do
  local key, mode, n, exp = KEYS[k], ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local last = i + 2 * n - 1
  -- 'i' onto a hash that does not exist yet (a later write's new keys: most of them) adds to nothing: set it
  if mode == 's' or mode == 'S' or call('EXISTS', key) == 0 then
    -- unpack is bounded by Lua's C stack: at most 500 pairs per HSET
    local j = i
    while j <= last do
      local e = min(j + 999, last)
      call('HSET', key, unpack(ARGV, j, e))
      j = e + 1
    end
  else
    for j = i, last, 2 do call('HINCRBY', key, ARGV[j], ARGV[j + 1]) end
  end
  i = last + 1
  -- the late log does not hold a rebuild's writes: the window reader reads a rebuilt hash whole from now on
  if mode == 'S' or mode == 'I' then call('HSET', key, '$WINDOW_VERSION_FIELD', ARGV[2], '$WINDOW_REBUILT_FIELD', '1') end
  if exp ~= '' then call('EXPIREAT', key, exp) end
end
return {'ok'}
