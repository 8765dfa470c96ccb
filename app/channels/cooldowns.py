"""Channel cooldowns (a circuit breaker per channel), shared by every process through Redis.

Redis holds the truth, under the settings' prefix:

    cooldown:board          hash  channel id → JSON {until_ms, level, reason, status, opened_ms, failures}
    cooldown:fails:<id>     zset  the channel's recent failures (the sliding window)
    cooldown:trial:<id>     str   the half-open trial claim (SET NX PX): one request may test the channel

A request never reads Redis for this. Each process keeps a copy of the board (`entries`), read again
every `cooldown_sync_seconds` in the background and updated at once from the answers to its own
reports, so another process sees a cooldown within one sync interval. Failures are reported in the
background, off the request's path, by one script that counts them and opens the cooldown. The only
Redis call a request may wait on is the trial claim, made once the cooldown of a channel it would
use has run out (and, after a lost claim, not again by that process until the next sync).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis

from app.channels.policy import ChannelPolicy
from app.core.settings import Settings
from app.core.tasks import Loop

log = logging.getLogger("heytoken.cooldowns")

_FAIL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, retry = ARGV[1], tonumber(ARGV[6])
local level, failures = 0, 0
local current = redis.call('HGET', KEYS[1], id)
if current then
  local state = cjson.decode(current)
  if state.until_ms > now then
    return {current, now}
  end
  level, failures = state.level + 1, state.failures
else
  redis.call('ZADD', KEYS[2], now, ARGV[9])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  failures = redis.call('ZCARD', KEYS[2])
  if failures < tonumber(ARGV[3]) and retry <= 0 then
    return {false, now}
  end
end
local cap = tonumber(ARGV[5])
local duration = math.min(tonumber(ARGV[4]) * 2 ^ level, cap)
if retry > duration then duration = math.min(retry, cap) end
local encoded = cjson.encode({until_ms = now + math.floor(duration), level = level, reason = ARGV[7],
  status = tonumber(ARGV[8]), opened_ms = now, failures = failures})
redis.call('HSET', KEYS[1], id, encoded)
redis.call('DEL', KEYS[2], KEYS[3])
return {encoded, now}
"""

_CLOSE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if cjson.decode(current).until_ms > now then
    return 0
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""


@dataclass(slots=True)
class Cooldown:
    until: float
    """time.monotonic() at which the channel turns half-open."""
    level: int
    reason: str
    status: int | None
    opened_at: float
    """Unix time."""
    failures: int


class _State(msgspec.Struct):
    until_ms: int
    level: int = 0
    reason: str = ""
    status: int | None = None
    opened_ms: int = 0
    failures: int = 0


_decode_state = msgspec.json.Decoder(_State).decode


def _cooldown(raw: bytes | str, redis_now_ms: int) -> Cooldown:
    s = _decode_state(raw)
    until = time.monotonic() + (s.until_ms - redis_now_ms) / 1000
    return Cooldown(until, s.level, s.reason, s.status or None, s.opened_ms / 1000, s.failures)


def public(channel_id: str, cd: Cooldown, now: float | None = None) -> dict[str, Any]:
    remaining = max(0.0, cd.until - (time.monotonic() if now is None else now))
    return {
        "channel_id": channel_id,
        "state": "cooling_down" if remaining > 0 else "half_open",
        "reason": cd.reason,
        "status": cd.status,
        "failures": cd.failures,
        "level": cd.level,
        "opened_at": round(cd.opened_at, 3),
        "until": round(time.time() + remaining, 3),
        "retry_after": round(remaining, 3),
    }


class Keys:
    def __init__(self, prefix: str) -> None:
        self.board = f"{prefix}cooldown:board"
        self._prefix = prefix

    def fails(self, channel_id: str) -> str:
        return f"{self._prefix}cooldown:fails:{channel_id}"

    def trial(self, channel_id: str) -> str:
        return f"{self._prefix}cooldown:trial:{channel_id}"


async def read_board(redis: Redis, prefix: str) -> dict[str, Cooldown]:
    """The shared board as it is now (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.hgetall(Keys(prefix).board)
        (seconds, micros), raw = await pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    out: dict[str, Cooldown] = {}
    for key, value in raw.items():
        try:
            out[key.decode() if isinstance(key, bytes) else key] = _cooldown(value, now_ms)
        except msgspec.DecodeError:
            continue
    return out


async def reset(redis: Redis, prefix: str, channel_id: str) -> bool:
    """End a channel's cooldown now (operator action). True if it had one."""
    keys = Keys(prefix)
    removed = await redis.hdel(keys.board, channel_id)
    await redis.delete(keys.fails(channel_id), keys.trial(channel_id))
    return bool(removed)


class CooldownBoard:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._prefix = settings.redis_prefix
        self._keys = Keys(settings.redis_prefix)
        self._sync_seconds = settings.cooldown_sync_seconds
        self._fail = redis.register_script(_FAIL)
        self._close = redis.register_script(_CLOSE)
        self.entries: dict[str, Cooldown] = {}
        """This process's copy of the board: the only thing a request reads."""
        self._trial_lost: dict[str, float] = {}
        self._local_fails: dict[str, deque[float]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._loop = Loop("cooldown-sync", self.sync, self._sync_seconds)
        self._last_warning = 0.0

    async def start(self) -> None:
        await self.sync()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)

    async def sync(self) -> None:
        try:
            self.entries = await read_board(self._redis, self._prefix)
        except Exception as exc:
            # Keep the last view: routing must not stop because Redis blinked.
            self._warn("cooldowns.sync_failed", exc)

    async def claim_trial(self, channel_id: str, policy: ChannelPolicy) -> bool:
        """The half-open test: True for the one request (across processes) that may try the channel."""
        now = time.monotonic()
        if self._trial_lost.get(channel_id, 0.0) > now:
            return False
        ttl = policy.connect_timeout + max(policy.first_byte_timeout, policy.total_timeout) + 1
        try:
            won = await self._redis.set(self._keys.trial(channel_id), b"1", nx=True, px=int(ttl * 1000))
        except Exception as exc:
            self._warn("cooldowns.claim_failed", exc)
            return True  # cannot coordinate: better one extra trial than a channel that never comes back
        if not won:
            self._trial_lost[channel_id] = now + self._sync_seconds
            return False
        return True

    def report_failure(
        self, channel_id: str, policy: ChannelPolicy, reason: str, status: int | None, retry_after: float | None
    ) -> None:
        self._spawn(self._report_failure(channel_id, policy, reason[:300], status, retry_after or 0.0))

    def report_recovery(self, channel_id: str) -> None:
        """A trial succeeded: close the channel's cooldown everywhere."""
        self.entries.pop(channel_id, None)
        self._trial_lost.pop(channel_id, None)
        self._spawn(self._report_recovery(channel_id))

    def release_trial(self, channel_id: str) -> None:
        """The trial request went away without a verdict (say, its client left): let another one try."""
        self._spawn(self._release_trial(channel_id))

    async def _release_trial(self, channel_id: str) -> None:
        try:
            await self._redis.delete(self._keys.trial(channel_id))
        except Exception as exc:
            self._warn("cooldowns.release_failed", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report_failure(
        self, channel_id: str, policy: ChannelPolicy, reason: str, status: int | None, retry_after: float
    ) -> None:
        keys = self._keys
        args: list[str | int] = [
            channel_id,
            int(policy.cooldown_window_seconds * 1000),
            policy.cooldown_failures,
            int(policy.cooldown_seconds * 1000),
            int(policy.cooldown_max_seconds * 1000),
            int(retry_after * 1000),
            reason,
            status or 0,
            uuid.uuid4().hex,
        ]
        try:
            raw, now_ms = await self._fail(keys=[keys.board, keys.fails(channel_id), keys.trial(channel_id)], args=args)
        except Exception as exc:
            self._warn("cooldowns.report_failed", exc)
            self._count_locally(channel_id, policy, reason, status, retry_after)
            return
        if raw is not None:
            self.entries[channel_id] = _cooldown(raw, int(now_ms))
            self._trial_lost.pop(channel_id, None)

    async def _report_recovery(self, channel_id: str) -> None:
        keys = self._keys
        try:
            await self._close(keys=[keys.board, keys.fails(channel_id), keys.trial(channel_id)], args=[channel_id])
        except Exception as exc:
            self._warn("cooldowns.report_failed", exc)

    def _count_locally(
        self, channel_id: str, policy: ChannelPolicy, reason: str, status: int | None, retry_after: float
    ) -> None:
        """Redis unreachable: keep a breaker of this process's own until it is back."""
        now = time.monotonic()
        window = self._local_fails.setdefault(channel_id, deque(maxlen=max(1, policy.cooldown_failures)))
        window.append(now)
        recent = sum(1 for t in window if now - t <= policy.cooldown_window_seconds)
        if recent >= policy.cooldown_failures or retry_after > 0:
            duration = min(max(policy.cooldown_seconds, retry_after), policy.cooldown_max_seconds)
            note = f"{reason} (this process only)"
            self.entries[channel_id] = Cooldown(now + duration, 0, note, status, time.time(), recent)
            window.clear()

    def _warn(self, event: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning("%s error=%r", event, exc)
