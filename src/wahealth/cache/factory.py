"""Pick report cache and nonce store backends from a URL, so deployments choose by configuration."""

from __future__ import annotations

from urllib.parse import urlsplit

from wahealth.cache.base import NonceStore, ReportCache
from wahealth.cache.memory import MemoryNonceStore, MemoryReportCache
from wahealth.cache.redis import RedisNonceStore, RedisReportCache

_REDIS_SCHEMES = frozenset({"redis", "rediss"})


def _scheme(url: str, what: str) -> str:
    # Only the scheme goes into the error: the rest of a URL may carry a password.
    scheme = urlsplit(url).scheme.lower()
    if scheme != "memory" and scheme not in _REDIS_SCHEMES:
        raise ValueError(
            f"unsupported {what} URL scheme {scheme!r}: use memory://, redis:// or rediss://"
        )
    return scheme


def create_report_cache(url: str) -> ReportCache:
    """`memory://` for one replica; `redis://…` or `rediss://…` to share reports across replicas."""
    if _scheme(url, "report cache") == "memory":
        return MemoryReportCache()
    return RedisReportCache.from_url(url)


def create_nonce_store(url: str) -> NonceStore:
    """`memory://` for one replica; `redis://…` or `rediss://…` so a replay fails on all of them."""
    if _scheme(url, "nonce store") == "memory":
        return MemoryNonceStore()
    return RedisNonceStore.from_url(url)
