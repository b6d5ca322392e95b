"""The Meta call budget in Redis: one budget for every replica, the refresh loops and queries.

Each scope (the app; a WABA, when a per-WABA limit is set) is a hash of per-second
buckets of calls, checked and spent by one Lua script on the Redis server's clock (TIME),
so replicas with drifting clocks still agree and two replicas never both take the last
call. A bucket counts until its *end* has left the window (Meta's minute and a second
of slack): a call is counted for 61 to 62 s, never less, so no 60 s holds more.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.exceptions import RedisError

from wahealth.core.budget import check_limits
from wahealth.core.ports import BackendUnavailable, BudgetGrant

# A call reaches Meta a moment after it is counted here: each is counted a second longer
# than Meta's minute, so no 60 s at Meta holds more than the limit either.
WINDOW_MILLISECONDS = 61_000
BUCKET_MILLISECONDS = 1_000
_REDIS_FAILURES = (RedisError, OSError)

# KEYS[1]  the app's buckets; KEYS[2] (optional) the WABA's
# ARGV[1]  the app's limit; ARGV[2] calls wanted (0: only read); ARGV[3] '1': grant as many
#          as fit, '0': all or none; ARGV[4] window ms; ARGV[5] bucket ms; ARGV[6] WABA limit
# returns  {calls granted, app calls in the window after it, ms until one more call fits
#          (or, for a refused all-or-none spend, until all of it fits)}
_SPEND_LUA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[4])
local bucket = tonumber(ARGV[5])
local current = math.floor(now / bucket)
local function load(key)
  local fields = redis.call('HGETALL', key)
  local total, buckets = 0, {}
  for i = 1, #fields, 2 do
    local b, n = tonumber(fields[i]), tonumber(fields[i + 1])
    if (b + 1) * bucket + window <= now then
      redis.call('HDEL', key, fields[i])
    else
      total = total + n
      buckets[#buckets + 1] = {b, n}
    end
  end
  table.sort(buckets, function(x, y) return x[1] < y[1] end)
  return total, buckets
end
local function frees_in(free, buckets, needed)
  if free >= needed then return 0 end
  for _, entry in ipairs(buckets) do
    free = free + entry[2]
    if free >= needed then return (entry[1] + 1) * bucket + window - now end
  end
  return window + bucket
end
local wanted, partial = tonumber(ARGV[2]), ARGV[3] == '1'
local app_spent, app_buckets = load(KEYS[1])
local free, buckets = tonumber(ARGV[1]) - app_spent, app_buckets
if #KEYS > 1 then
  local waba_spent, waba_buckets = load(KEYS[2])
  local waba_free = tonumber(ARGV[6]) - waba_spent
  if waba_free < free then free, buckets = waba_free, waba_buckets end
end
if free < 0 then free = 0 end
local granted = wanted
if granted > free then
  if partial then granted = free else granted = 0 end
end
if granted > 0 then
  for i = 1, #KEYS do
    redis.call('HINCRBY', KEYS[i], current, granted)
    redis.call('PEXPIRE', KEYS[i], window + 2 * bucket)
  end
  buckets[#buckets + 1] = {current, granted}
end
local needed = 1
if granted == 0 and not partial and wanted > 0 then needed = wanted end
return {granted, app_spent + granted, frees_in(free - granted, buckets, needed)}
"""


class RedisCallBudget:
    """The `MetaBudget` in Redis, per app and (with `calls_per_minute_per_waba`) per WABA.

    `app` names the Meta app whose budget this is (one per upstream credential);
    `window_milliseconds` is Meta's minute everywhere but in tests of the script itself.
    """

    def __init__(
        self,
        client: redis.Redis,
        calls_per_minute: int,
        *,
        calls_per_minute_per_waba: int | None = None,
        app: str = "default",
        prefix: str = "wahealth:budget:",
        window_milliseconds: int = WINDOW_MILLISECONDS,
        bucket_milliseconds: int = BUCKET_MILLISECONDS,
    ) -> None:
        check_limits(calls_per_minute, calls_per_minute_per_waba)
        self._client = client
        self._calls_per_minute = calls_per_minute
        self._per_waba = calls_per_minute_per_waba
        self._app_key = f"{prefix}app:{app}"
        self._waba_prefix = f"{prefix}waba:{app}:"
        self._window = window_milliseconds
        self._bucket = bucket_milliseconds
        self._script = client.register_script(_SPEND_LUA)

    @property
    def calls_per_minute(self) -> int:
        return self._calls_per_minute

    async def spend(
        self, calls: int, *, waba_id: str | None = None, partial: bool = False
    ) -> BudgetGrant:
        """Spend `calls` now (with `partial`, as many as fit), or none, on every replica."""
        if calls < 0:
            raise ValueError(f"cannot spend {calls} calls")
        granted, _, wait_ms = await self._run(calls, waba_id, partial)
        return BudgetGrant(int(granted), int(wait_ms) / 1000)

    async def spent(self) -> int:
        """The app's calls in the 60 s ending now, as every replica counted them."""
        _, spent, _ = await self._run(0, None, False)
        return int(spent)

    async def _run(self, calls: int, waba_id: str | None, partial: bool) -> list[int]:
        keys = [self._app_key]
        args: list[int | str] = [
            self._calls_per_minute,
            calls,
            "1" if partial else "0",
            self._window,
            self._bucket,
        ]
        if waba_id is not None and self._per_waba is not None:
            keys.append(self._waba_prefix + waba_id)
            args.append(self._per_waba)
        try:
            answer: list[int] = await self._script(keys=keys, args=args)
        except _REDIS_FAILURES as exc:
            # The error's type only: redis-py messages name hosts, a URL may carry a password.
            raise BackendUnavailable(
                f"Meta call budget: Redis did not answer ({type(exc).__name__})"
            ) from exc
        return answer

    async def aclose(self) -> None:
        """The client is the process's (see `backends.RedisClients`): nothing to close here."""
