"""Window sums added up in Redis: one script call a brand reads its buckets and returns, per
window, the sums of only the counters asked for.

The evaluation reads every rule window of every brand at each tick: at 1,000 brands about
25,000 bucket hashes of a few hundred fields each, of which the rules need a tenth. Sent whole,
parsed by hiredis and added up in Python, they were half of an evaluation round. Added up next
to the data, only the sums travel. The result is what ``sum_buckets`` gives on the same buckets:
each field's values are added in the same order (the window's buckets in turn, each in its
hash's order) as doubles, and returned with 17 significant digits, so they read back exactly.
(Whole counts are exact up to 2^53, 9 * 10^15 in one window: Lua has only doubles, where
sum_buckets adds Python integers. A window's count, reach or amount stays far below that.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import redis

from socialpulse.core.connections import is_cluster
from streams.counters import WindowCounts, count_value

# KEYS: a brand's bucket hashes. ARGV[1]: the counters wanted, comma-separated; then per
# window its buckets' places in KEYS, space-separated (one argument a window: packing the
# arguments of 1,000 brands' calls was a sixth of a round). Returns per window a flat list of
# field, sum; then the errors of keys Redis would not read (another type: read as empty).
SUM_WINDOWS = """
local wanted = {}
for name in string.gmatch(ARGV[1], '[^,]+') do wanted[name] = true end
local buckets, refused = {}, {}
for k = 1, #KEYS do
  local reply = redis.pcall('HGETALL', KEYS[k])
  local kept = {}
  if reply.err then
    refused[#refused + 1] = reply.err
  else
    for i = 1, #reply, 2 do
      local name = reply[i]
      local bar = string.find(name, '|', 1, true)
      local value = tonumber(reply[i + 1])
      if value and wanted[bar and string.sub(name, 1, bar - 1) or name] then
        kept[#kept + 1] = name
        kept[#kept + 1] = value
      end
    end
  end
  buckets[k] = kept
end
local out = {}
for w = 2, #ARGV do
  local sums, order = {}, {}
  for place in string.gmatch(ARGV[w], '%d+') do
    local kept = buckets[tonumber(place)]
    for i = 1, #kept, 2 do
      local name = kept[i]
      if sums[name] == nil then
        sums[name] = kept[i + 1]
        order[#order + 1] = name
      else
        sums[name] = sums[name] + kept[i + 1]
      end
    end
  end
  local flat = {}
  for _, name in ipairs(order) do
    flat[#flat + 1] = name
    flat[#flat + 1] = string.format('%.17g', sums[name])
  end
  out[#out + 1] = flat
end
out[#out + 1] = refused
return out
"""
_DIGEST = hashlib.sha1(SUM_WINDOWS.encode()).hexdigest()

# A brand's windows: each a list of bucket keys (a key several windows share is read once).
BrandWindows = Sequence[Sequence[str]]


def queue_sums(pipe: Any, windows: BrandWindows, only: Collection[str]) -> None:
    """Queue on the (sync) pipeline ``pipe`` one script call that sums, over each of one
    brand's ``windows``, the ``only`` counters of its buckets (read the reply with
    :func:`window_counts`); on NOSCRIPT, :func:`load_sums` and queue them again."""
    place: dict[str, int] = {}
    groups = [
        " ".join(str(place.setdefault(key, len(place) + 1)) for key in buckets)
        for buckets in windows
    ]
    args = [",".join(sorted(only)), *groups]
    # On a cluster the text goes with each call: its pipeline loads no script, and a node
    # that restarts forgets them. (redis-py's sync cluster pipeline refuses eval(); the
    # command itself is routed by its keys, one brand's slot.)
    if is_cluster(pipe):
        pipe.execute_command("EVAL", SUM_WINDOWS, len(place), *place, *args)
    else:
        pipe.evalsha(_DIGEST, len(place), *place, *args)


def load_sums(client: redis.Redis) -> None:
    """Load the script (off a cluster; a no-op when Redis holds it), when a pipeline of
    :func:`queue_sums` calls met NOSCRIPT: Redis forgets scripts when it restarts."""
    if not is_cluster(client):
        client.script_load(SUM_WINDOWS)


def window_counts(reply: Any, windows: int) -> tuple[list[WindowCounts], list[str]]:
    """A :func:`queue_sums` reply: the counts of each of the ``windows`` windows, and what
    Redis said of the keys it would not read. An error reply (or none) reads as empty."""
    if not isinstance(reply, list) or len(reply) != windows + 1:
        return [{} for _ in range(windows)], []
    result = []
    for flat in reply[:windows]:
        counts: WindowCounts = {}
        for i in range(0, len(flat), 2):
            counter, _, platform = _text(flat[i]).partition("|")
            text = _text(flat[i + 1])
            counts[(counter, platform)] = int(text) if text.isdigit() else count_value(text)
        result.append(counts)
    return result, [_text(said) for said in reply[windows]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
