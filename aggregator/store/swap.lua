-- Swaps a range rebuilt aside (a range backfill's new generation) into the live buckets of one partition, a batch
-- of keys at a time, under the partition's lock (the aggregators wait while it is held).
-- KEYS: 1 the partition's lock, then pairs (live key, aside key), all of the partition's hash slot.
-- ARGV: 1 lock token, then per pair: mode 'w' (the key lies wholly in the range: the aside key replaces it, or it is
--       deleted when there is none) or 'c' followed by lo, hi (only fields lo ≤ f < hi lie in the range: those are
--       deleted from the live key and the aside key's fields, all in the range, are set in it).
-- Returns {'ok', keys replaced} | {'locked', owner}.
local lock = redis.call('GET', KEYS[1])
if lock ~= ARGV[1] then return {'locked', lock or ''} end
local call, tonumber, unpack, min = redis.call, tonumber, unpack, math.min
local function sliced(cmd, key, list)
  local j = 1
  while j <= #list do
    local e = min(j + 999, #list)
    call(cmd, key, unpack(list, j, e))
    j = e + 1
  end
end
local i, n = 2, 0
for k = 2, #KEYS, 2 do
  local live, aside, mode = KEYS[k], KEYS[k + 1], ARGV[i]
  if mode == 'w' then
    i = i + 1
    if call('EXISTS', aside) == 1 then call('RENAME', aside, live); n = n + 1 else call('DEL', live) end
  else
    local lo, hi = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    i = i + 3
    local gone = {}
    for _, f in ipairs(call('HKEYS', live)) do
      local x = tonumber(f)
      if x and x >= lo and x < hi then gone[#gone + 1] = f end
    end
    sliced('HDEL', live, gone)
    if call('EXISTS', aside) == 1 then
      n = n + 1
      if call('EXISTS', live) == 0 then
        call('RENAME', aside, live) -- keeps the aside key's expiry (the same as the live key's: the block's end + TTL)
      else
        sliced('HSET', live, call('HGETALL', aside))
        call('DEL', aside)
      end
    end
  end
end
return {'ok', n}
