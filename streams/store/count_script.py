"""The Redis script that counts one brand's batch, and its arguments (building them is pure).

One call per brand does everything a batch changes for that brand, atomically: counters per
bucket tier, per campaign and content item, distinct counts, the newest gauges, customer-care
matching. An event counts only the first time its id is seen (per event type): Kafka delivers
at least once, and a redelivery after a crash or rebalance must change nothing.

Nothing an event carries is parsed by the script: ids, authors, members, conversation ids and
hash field names (``likes|content:https://shop.example/p?ref=a,b=c``) are whole arguments, and
the event records refer to field names by their index in the call's name table. The script
checks every argument and the type of every key before its first write, so a call it refuses
changes nothing (and the caller can narrow a failing batch down to the event at fault).

KEYS: every key the batch touches, each once.
ARGV: a header of 8 (author limit per minute or 0, number of key groups, names, events,
gauges, care events, snapshots, snapshot pieces), then:

- per key ``<type>:<expiry>`` (type h hash, s set, z sorted set, p HyperLogLog);
- per key group the comma-separated KEYS indices of keys updated together (an event's bucket
  in each tier, its dimensions' buckets, the HyperLogLogs a distinct member goes to, ...);
- the names: hash fields, each one argument;
- per event 11: id, dedupe set, author-rate hash (0: not limited), author, bucket group,
  fields, filtered fields, distinct group (0: none), distinct member, dimension bucket group
  (0: none), dimension fields. A field list is comma-separated ``<name index>`` (+1) or
  ``<name index>:<amount>`` (+amount), so it holds only digits and a number;
- per gauge 4: gauge hash, name, event time, value (kept when its event time is the newest);
- per care event 12: id, inbound|reply, conversation, event time, dedupe set, waiting set,
  platforms set, oldest waiting time kept, platform, response-time group, bucket group, name
  of the responses field;
- per snapshot 3: object state hash, the version its state was read at (0: none), the new
  state (JSON, streams.snapshots); written only when the stored version is still that one;
- per snapshot piece 5: snapshot number, bucket group, fields, dimension bucket group (0:
  none), dimension fields; counted only with its snapshot.

Returns one status per event: 0 duplicate, 1 counted, 2 filtered (author over the rate); then
one per snapshot: 1 written, 3 conflict (another writer changed the object since it was read:
read it again and retry).
Increments are summed in the script and written once per (key, field), so a batch costs one
HINCRBY per distinct field instead of one per event and tier. Amounts are summed exactly too,
as integers of millionths, where they have at most 6 decimals and are below about 9 billion
(2^53 millionths; Python's repr of money and of most measures): one HINCRBYFLOAT per field,
not one per amount. Any other amount (an exponent, more decimals, a larger one) is added on
its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from socialpulse.core.redis_keys import RedisKeys
from streams.counted import CountedEvent
from streams.counters import Add
from streams.customer_care import WAITING_KEPT
from streams.snapshots import Piece
from streams.windows import DEDUPE_BUCKET, WindowPlan

EVENT_ARGS, GAUGE_ARGS, CARE_ARGS, SNAPSHOT_ARGS, PIECE_ARGS = 11, 4, 12, 3, 5
HEADER = 8
# A gauge no event has refreshed for this long is forgotten.
GAUGE_TTL = 90 * 86400
# A brand's running totals (exported as Prometheus counters) live this long after its last
# counted event: a brand gone quiet for over a year starts again from zero.
TOTALS_KEPT = 400 * 86400

EXACT_AMOUNTS = """\
-- An amount of at most 6 decimals, in millionths, when that integer is below 2^53 (the amount
-- below about 9 billion): a double holds it exactly, so such amounts add up exactly; nil for
-- any other (added on its own).
local SCALE, EXACT = 1000000, 2 ^ 53
local function micros(amount)
  local sign, whole, frac = string.match(amount, '^(%-?)(%d+)%.?(%d*)$')
  if not whole or #frac > 6 or #whole > 10 then return nil end
  local n = tonumber(whole .. frac .. string.rep('0', 6 - #frac))
  if n >= EXACT then return nil end
  if sign == '-' then return -n end
  return n
end
local function decimal(n)
  local sign = ''
  if n < 0 then sign, n = '-', -n end
  local whole = math.floor(n / SCALE)
  local frac = n - whole * SCALE
  if frac < 0 then whole, frac = whole - 1, frac + SCALE
  elseif frac >= SCALE then whole, frac = whole + 1, frac - SCALE end
  return string.format('%s%.0f.%06.0f', sign, whole, frac)
end
"""
# (The daily rollups, streams.store.day_rollups, sum amounts with the same two functions.)

APPLY_BATCH = (
    """
local ERR = 'socialpulse count script: '
local limit, ngroups, nnames = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local nevents, ngauges, ncare = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nsnaps, npieces = tonumber(ARGV[7]), tonumber(ARGV[8])
local nkeys = #KEYS
if not (limit and ngroups and nnames and nevents and ngauges and ncare and nsnaps and npieces) then
  return redis.error_reply(ERR .. 'bad header')
end
local groups0, names0 = 8 + nkeys, 8 + nkeys + ngroups
local events0 = names0 + nnames
local gauges0 = events0 + 11 * nevents
local care0 = gauges0 + 4 * ngauges
local snaps0 = care0 + 12 * ncare
local pieces0 = snaps0 + 3 * nsnaps
if #ARGV ~= pieces0 + 5 * npieces then return redis.error_reply(ERR .. 'wrong argument count') end

-- 1. Check everything before the first write: a refused call changes nothing.
local TYPES = {h = 'hash', s = 'set', z = 'zset', p = 'string'}
local kind, expiry = {}, {}
for k = 1, nkeys do
  local t, at = string.match(ARGV[8 + k], '^(%a):(%d+)$')
  if not t or not TYPES[t] then return redis.error_reply(ERR .. 'bad key spec ' .. k) end
  local actual = redis.call('TYPE', KEYS[k])['ok']
  if actual ~= 'none' and actual ~= TYPES[t] then
    return redis.error_reply(ERR .. KEYS[k] .. ' holds a ' .. actual .. ', not a ' .. TYPES[t])
  end
  kind[k], expiry[k] = t, at
end
local function key_of(i, t)
  local k = tonumber(i)
  if k and k >= 1 and k <= nkeys and k == math.floor(k) and kind[k] == t then return k end
  return nil
end
local groups = {}
for g = 1, ngroups do
  local list = {}
  for k in string.gmatch(ARGV[groups0 + g], '[^,]+') do
    local index = tonumber(k)
    if not index or index < 1 or index > nkeys then
      return redis.error_reply(ERR .. 'bad key group ' .. g)
    end
    list[#list + 1] = index
  end
  groups[g] = list
end
local function group_of(i, optional)
  local g = tonumber(i)
  if optional and g == 0 then return 0 end
  if g and groups[g] then return g end
  return nil
end
local function finite(x) return x and x == x and x ~= math.huge and x ~= -math.huge end
"""
    + EXACT_AMOUNTS
    + """-- Most events of a batch repeat a few field lists: each distinct one is read once.
local parsed = {}
local function fields_of(spec)
  local known = parsed[spec]
  if known ~= nil then return known or nil end
  local list = {}
  for item in string.gmatch(spec, '[^,]+') do
    local n, amount = string.match(item, '^(%d+):(.+)$')
    if not n then n = string.match(item, '^(%d+)$') end
    n = tonumber(n)
    if not n or n < 1 or n > nnames or (amount and not finite(tonumber(amount))) then
      parsed[spec] = false
      return nil
    end
    list[#list + 1] = {n, amount, amount and micros(amount)}
  end
  parsed[spec] = list
  return list
end
local events = {}
for e = 1, nevents do
  local a = events0 + 11 * (e - 1)
  local ev = {
    id = ARGV[a + 1], seen = key_of(ARGV[a + 2], 's'), author = ARGV[a + 4],
    bucket = group_of(ARGV[a + 5]), fields = fields_of(ARGV[a + 6]),
    filtered = fields_of(ARGV[a + 7]), unique = group_of(ARGV[a + 8], true),
    member = ARGV[a + 9], dim = group_of(ARGV[a + 10], true), dimfields = fields_of(ARGV[a + 11])
  }
  if ARGV[a + 3] == '0' then ev.rate = 0 else ev.rate = key_of(ARGV[a + 3], 'h') end
  for _, part in ipairs({'seen', 'rate', 'bucket', 'fields', 'filtered', 'unique', 'dim',
                         'dimfields'}) do
    if ev[part] == nil then return redis.error_reply(ERR .. 'event ' .. e .. ': bad ' .. part) end
  end
  events[e] = ev
end
local gauges = {}
for i = 1, ngauges do
  local a = gauges0 + 4 * (i - 1)
  local g = {key = key_of(ARGV[a + 1], 'h'), name = tonumber(ARGV[a + 2]),
             ts = tonumber(ARGV[a + 3]), at = ARGV[a + 3], value = ARGV[a + 4]}
  if not g.key or not g.name or g.name < 1 or g.name > nnames or not finite(g.ts)
     or not finite(tonumber(g.value)) then
    return redis.error_reply(ERR .. 'gauge ' .. i .. ': bad arguments')
  end
  gauges[i] = g
end
local cares = {}
for i = 1, ncare do
  local a = care0 + 12 * (i - 1)
  local c = {id = ARGV[a + 1], kind = ARGV[a + 2], thread = ARGV[a + 3], ts = tonumber(ARGV[a + 4]),
             seen = key_of(ARGV[a + 5], 's'), waiting = key_of(ARGV[a + 6], 'z'),
             platforms = key_of(ARGV[a + 7], 's'), oldest = tonumber(ARGV[a + 8]),
             platform = ARGV[a + 9], rt = group_of(ARGV[a + 10]),
             buckets = group_of(ARGV[a + 11]), name = tonumber(ARGV[a + 12])}
  if (c.kind ~= 'inbound' and c.kind ~= 'reply') or not finite(c.ts) or not c.seen
     or not c.waiting or not c.platforms or not finite(c.oldest) or not c.rt or not c.buckets
     or not c.name or c.name < 1 or c.name > nnames or #groups[c.rt] ~= #groups[c.buckets] then
    return redis.error_reply(ERR .. 'care event ' .. i .. ': bad arguments')
  end
  cares[i] = c
end
local snaps = {}
for i = 1, nsnaps do
  local a = snaps0 + 3 * (i - 1)
  local sn = {key = key_of(ARGV[a + 1], 'h'), version = tonumber(ARGV[a + 2]), state = ARGV[a + 3]}
  if not sn.key or not sn.version then
    return redis.error_reply(ERR .. 'snapshot ' .. i .. ': bad arguments')
  end
  snaps[i] = sn
end
local pieces = {}
for i = 1, npieces do
  local a = pieces0 + 5 * (i - 1)
  local p = {snap = tonumber(ARGV[a + 1]), bucket = group_of(ARGV[a + 2]),
             fields = fields_of(ARGV[a + 3]), dim = group_of(ARGV[a + 4], true),
             dimfields = fields_of(ARGV[a + 5])}
  if not p.snap or not snaps[p.snap] or not p.bucket or not p.fields or not p.dim
     or not p.dimfields then
    return redis.error_reply(ERR .. 'snapshot piece ' .. i .. ': bad arguments')
  end
  pieces[i] = p
end

-- 2. Count.
local function name(n) return ARGV[names0 + n] end
local touched, counts, members, status = {}, {}, {}, {}
local function add(g, list)
  local byfield = counts[g]
  if not byfield then byfield = {}; counts[g] = byfield end
  for _, f in ipairs(list) do
    local n, amount, m = f[1], f[2], f[3]
    if amount then
      -- Summed exactly in millionths (a new sum before one could pass 2^53); an amount that
      -- has no exact millionths goes in on its own. One HINCRBYFLOAT per sum, not per amount.
      local amounts = byfield['+' .. n]
      if not amounts then amounts = {n = n, sums = {0}, raw = {}}; byfield['+' .. n] = amounts end
      if m then
        local sums = amounts.sums
        if math.abs(sums[#sums]) + math.abs(m) >= EXACT then sums[#sums + 1] = 0 end
        sums[#sums] = sums[#sums] + m
      else
        amounts.raw[#amounts.raw + 1] = amount
      end
    else
      byfield[n] = (byfield[n] or 0) + 1
    end
  end
end
for e, ev in ipairs(events) do
  if redis.call('SADD', KEYS[ev.seen], ev.id) == 1 then
    touched[ev.seen] = true
    local fields, result = ev.fields, 1
    if limit > 0 and ev.rate > 0 then
      touched[ev.rate] = true
      if redis.call('HINCRBY', KEYS[ev.rate], ev.author, 1) > limit then
        fields, result = ev.filtered, 2
      end
    end
    add(ev.bucket, fields)
    if result == 1 and ev.dim > 0 then add(ev.dim, ev.dimfields) end
    if result == 1 and ev.unique > 0 then
      for _, k in ipairs(groups[ev.unique]) do
        local list = members[k]
        if not list then list = {}; members[k] = list end
        list[#list + 1] = ev.member
      end
    end
    status[e] = result
  else
    status[e] = 0
  end
end
-- Snapshots: the new state only over the version it was computed from, and its pieces only
-- with it (compare-and-set: a conflicting writer's snapshot is read again and retried).
for i, sn in ipairs(snaps) do
  local stored = tonumber(redis.call('HGET', KEYS[sn.key], 'v') or '0')
  if stored == sn.version then
    redis.call('HSET', KEYS[sn.key], 'v', stored + 1, 's', sn.state)
    touched[sn.key] = true
    sn.ok = true
    status[nevents + i] = 1
  else
    status[nevents + i] = 3
  end
end
for _, p in ipairs(pieces) do
  if snaps[p.snap].ok then
    add(p.bucket, p.fields)
    if p.dim > 0 then add(p.dim, p.dimfields) end
  end
end
for g, byfield in pairs(counts) do
  for f, n in pairs(byfield) do
    for _, k in ipairs(groups[g]) do
      touched[k] = true
      if type(n) == 'table' then
        local field = name(n.n)
        for i, sum in ipairs(n.sums) do
          -- the first sum even when 0 (the field exists once an amount was counted)
          if i > 1 or sum ~= 0 or #n.raw == 0 then
            redis.call('HINCRBYFLOAT', KEYS[k], field, decimal(sum))
          end
        end
        for _, amount in ipairs(n.raw) do redis.call('HINCRBYFLOAT', KEYS[k], field, amount) end
      else
        redis.call('HINCRBY', KEYS[k], name(f), n)
      end
    end
  end
end
for k, list in pairs(members) do
  touched[k] = true
  for i = 1, #list, 1000 do
    redis.call('PFADD', KEYS[k], unpack(list, i, math.min(i + 999, #list)))
  end
end

-- 3. Gauges: the newest value by event time wins, so a late or redelivered snapshot never
-- overwrites a newer one (idempotent, so no dedupe of their own).
for _, g in ipairs(gauges) do
  local field = name(g.name)
  local stamp = field .. '@ts'
  local newest = tonumber(redis.call('HGET', KEYS[g.key], stamp) or '-1')
  if g.ts >= newest then redis.call('HSET', KEYS[g.key], field, g.value, stamp, g.at) end
  touched[g.key] = true
end

-- 4. Customer care: an inbound message waits until the brand's first reply on its
-- conversation; the reply records the seconds between them (once, by the care event's id).
for _, c in ipairs(cares) do
  if redis.call('SADD', KEYS[c.seen], c.id) == 1 then
    touched[c.seen] = true
    if c.kind == 'inbound' then
      redis.call('ZADD', KEYS[c.waiting], 'NX', c.ts, c.thread)
      redis.call('ZREMRANGEBYSCORE', KEYS[c.waiting], '-inf', '(' .. c.oldest)
      redis.call('SADD', KEYS[c.platforms], c.platform)
      touched[c.waiting], touched[c.platforms] = true, true
    else
      local asked = redis.call('ZSCORE', KEYS[c.waiting], c.thread)
      if asked then
        redis.call('ZREM', KEYS[c.waiting], c.thread)
        local seconds = math.max(0, c.ts - tonumber(asked))
        local rts, buckets = groups[c.rt], groups[c.buckets]
        for t = 1, #rts do
          redis.call('ZADD', KEYS[rts[t]], seconds, c.thread .. '@' .. c.id)
          redis.call('HINCRBY', KEYS[buckets[t]], name(c.name), 1)
          touched[rts[t]], touched[buckets[t]] = true, true
        end
      end
    end
  end
end
for k in pairs(touched) do redis.call('EXPIREAT', KEYS[k], expiry[k]) end
return status
"""
)


class ScriptCall:
    """KEYS, key groups and field names of one script call, each listed once (Lua indices)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.specs: list[str] = []
        self.groups: list[str] = []
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self._names: dict[str, int] = {}
        self._groups: dict[tuple[str, ...], int] = {}
        self._specs: dict[tuple[Add, ...], str] = {}  # most events repeat a few field lists

    def key(self, name: str, kind: str, expires_at: int) -> int:
        """Index of the key ``name`` of type ``kind`` (h, s, z, p), expiring at ``expires_at``."""
        index = self._index.get(name)
        if index is None:
            self.keys.append(name)
            self.specs.append(f"{kind}:{int(expires_at)}")
            index = self._index[name] = len(self.keys)
        return index

    def group(self, members: Iterable[tuple[str, str, int]]) -> int:
        """Index of the group of keys (name, type, expiry) updated together."""
        indices = tuple(str(self.key(*member)) for member in members)
        index = self._groups.get(indices)
        if index is None:
            self.groups.append(",".join(indices))
            index = self._groups[indices] = len(self.groups)
        return index

    def name(self, field: str) -> int:
        """Index of a hash field name in the call's name table."""
        index = self._names.get(field)
        if index is None:
            _check_text(field, "field name")
            self.names.append(field)
            index = self._names[field] = len(self.names)
        return index

    def fields(self, adds: Sequence[Add]) -> str:
        """A field list as the script reads it: ``<name>`` or ``<name>:<amount>``, by comma."""
        key = tuple(adds)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = self._fields(adds)
        return spec

    def _fields(self, adds: Sequence[Add]) -> str:
        parts = []
        for name, amount in adds:
            n = self.name(name)
            if amount is None:
                parts.append(str(n))
                continue
            if not math.isfinite(amount):
                raise ValueError(f"{name}: the amount {amount!r} is not a finite number")
            parts.append(f"{n}:{amount!r}")
        return ",".join(parts)


def _check_text(value: str, what: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} {value[:40]!r} is not valid Unicode: {exc.reason}") from None
    return value


@dataclass(frozen=True)
class SnapshotWrite:
    """One snapshot's write: the object's state key, the version its state was read at (0:
    none), the new state, when the state expires, and the pieces it counts."""

    key: str
    version: int
    state: str
    expires_at: int
    pieces: Sequence[Piece]


def brand_call(
    keys: RedisKeys,
    plan: WindowPlan,
    brand: str,
    batch: Sequence[CountedEvent],
    author_limit: int,
    now: float | None = None,
    snapshots: Sequence[SnapshotWrite] = (),
) -> tuple[list[str], list[str | int]]:
    """KEYS and ARGV of the script call that applies one brand's ``batch`` of events and
    ``snapshots``; ValueError when one cannot be encoded (nothing is sent then)."""
    now = time.time() if now is None else now
    call = ScriptCall()
    tiers = plan.tiers
    finest = tiers[0]  # every coarser tier is a multiple of it, so its slot fixes them all

    groups: dict[tuple[Callable[..., str], int, tuple[str, ...]], int] = {}

    def per_tier(slot: int, key_of: Callable[..., str], kind: str, *extra: str) -> int:
        # The keys of one family (key_of(brand, tier, start, *extra)) for the slot, one a tier;
        # most events of a batch share a slot, so each group is built once.
        found = groups.get((key_of, slot, extra))
        if found is None:
            found = groups[(key_of, slot, extra)] = call.group(
                (key_of(brand, tier, start, *extra), kind, plan.bucket_expires_at(start, tier))
                for tier in tiers
                for start in (slot - slot % tier,)
            )
        return found

    totals = (keys.totals(brand), "h", int(now) + TOTALS_KEPT)
    counted_groups: dict[int, int] = {}

    def counted(slot: int) -> int:
        # The slot's bucket in each tier and the brand's running totals: what an event's
        # fields add to (customer care keeps its per-tier bucket group).
        found = counted_groups.get(slot)
        if found is None:
            tier_keys = [
                (keys.bucket(brand, tier, start), "h", plan.bucket_expires_at(start, tier))
                for tier in tiers
                for start in (slot - slot % tier,)
            ]
            found = counted_groups[slot] = call.group([*tier_keys, totals])
        return found

    events: list[str | int] = []
    gauges: list[str | int] = []
    cares: list[str | int] = []
    for event in batch:
        second = int(event.ts)
        slot = second - second % finest
        minute = second - second % DEDUPE_BUCKET
        # Both live as long as a redelivery of the event could still arrive.
        expiry = plan.dedupe_expires_at(event.ts)
        seen = call.key(keys.seen(brand, minute, event.event_type), "s", expiry)
        rate = call.key(keys.author_rate(brand, minute), "h", expiry) if event.author else 0
        unique, member = 0, ""
        if event.unique:
            name, member = event.unique
            unique = per_tier(slot, keys.unique, "p", name)
        dimension = 0
        if event.dimension_fields:
            dimension = per_tier(slot, keys.dimension_bucket, "h")
        events += [
            _check_text(event.event_id, "id"),
            seen,
            rate,
            _check_text(event.author or "", "author"),
            counted(slot),
            call.fields(event.fields),
            call.fields(event.filtered_fields),
            unique,
            _check_text(member, "distinct member"),
            dimension,
            call.fields(event.dimension_fields),
        ]
        if event.gauge:
            name, value = event.gauge
            if not math.isfinite(value):
                raise ValueError(f"{name}: the value {value!r} is not a finite number")
            gauge_key = call.key(keys.gauges(brand), "h", int(now) + GAUGE_TTL)
            gauges += [gauge_key, call.name(name), repr(event.ts), repr(value)]
        if event.care:
            kind, thread = event.care
            platform = event.platform
            bucket = per_tier(slot, keys.bucket, "h")
            cares += [
                event.event_id,
                kind,
                _check_text(thread, "conversation"),
                repr(event.ts),
                call.key(keys.care_seen(brand, minute), "s", expiry),
                call.key(keys.waiting(brand, platform), "z", int(now) + WAITING_KEPT),
                call.key(keys.care_platforms(brand), "s", int(now) + WAITING_KEPT),
                int(now) - WAITING_KEPT,
                platform,
                per_tier(slot, keys.response_times, "z", platform),
                bucket,
                call.name(f"responses|{platform}"),
            ]
    snaps: list[str | int] = []
    pieces: list[str | int] = []
    for number, write in enumerate(snapshots, 1):
        snaps += [call.key(_check_text(write.key, "object"), "h", write.expires_at), write.version,
                  write.state]  # fmt: skip
        for piece in write.pieces:
            pieces += [
                number,
                counted(piece.slot),
                call.fields(piece.fields),
                per_tier(piece.slot, keys.dimension_bucket, "h") if piece.dimension_fields else 0,
                call.fields(piece.dimension_fields),
            ]
    header: list[str | int] = [
        author_limit,
        len(call.groups),
        len(call.names),
        len(batch),
        len(gauges) // GAUGE_ARGS,
        len(cares) // CARE_ARGS,
        len(snaps) // SNAPSHOT_ARGS,
        len(pieces) // PIECE_ARGS,
    ]
    return call.keys, [
        *header,
        *call.specs,
        *call.groups,
        *call.names,
        *events,
        *gauges,
        *cares,
        *snaps,
        *pieces,
    ]
