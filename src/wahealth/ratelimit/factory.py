"""Pick a rate limiter backend from a URL, so deployments choose by configuration."""

from __future__ import annotations

from urllib.parse import urlsplit

from wahealth.ratelimit.base import RateLimiter
from wahealth.ratelimit.memory import MemoryRateLimiter
from wahealth.ratelimit.redis import RedisRateLimiter

_REDIS_SCHEMES = frozenset({"redis", "rediss"})


def create_rate_limiter(url: str) -> RateLimiter:
    """`memory://` for one replica; `redis://…` or `rediss://…` to share limits across replicas."""
    # Only the scheme goes into the error: the rest of a URL may carry a password.
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryRateLimiter()
    if scheme in _REDIS_SCHEMES:
        return RedisRateLimiter.from_url(url)
    raise ValueError(
        f"unsupported rate limiter URL scheme {scheme!r}: use memory://, redis:// or rediss://"
    )
