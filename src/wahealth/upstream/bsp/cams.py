"""Alibaba CAMS `GetWhatsappHealthStatus` through the official SDK, within CAMS's limits.

The SDK's async method is used, so the event loop is never blocked. Alibaba allows 5
calls per second per account: every call first takes a slot from the rate limiter
(the same backend as the gateway's, so replicas share it), waiting for one if need be.
A throttling answer (`ThrottlingException`, or a `Throttling.*` code) holds the AccessKey
for the wait Alibaba asked (`x-acs-retry-after`), or a second. The secret lives in the
SDK's config only; errors and logs name the AccessKey id at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from alibabacloud_cams20200606.client import Client
from alibabacloud_cams20200606.models import GetWhatsappHealthStatusRequest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions

from wahealth.core.ports import (
    BackendUnavailable,
    RateLimiter,
    UpstreamAuthFailure,
    UpstreamFailure,
    UpstreamNotFound,
)
from wahealth.upstream.bsp.config import CamsAccount
from wahealth.upstream.bsp.holds import BspThrottled, Holds

log = structlog.get_logger(__name__)

DEFAULT_THROTTLE_SECONDS = 1.0
MAX_SLOT_WAIT_SECONDS = 10.0
_AUTH_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidTimeStamp",
    "Forbidden",
    "NoPermission",
)

Sleep = Callable[[float], Awaitable[None]]


class CamsClient:
    """One CAMS account's calls: rate-limited, held after throttling, errors as the core's."""

    def __init__(
        self,
        account: CamsAccount,
        *,
        limiter: RateLimiter,
        holds: Holds,
        timeout_seconds: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self._limiter = limiter
        self._holds = holds
        self._sleep = sleep
        self._clock = clock
        self._client = Client(
            Config(
                access_key_id=account.access_key_id,
                access_key_secret=account.access_key_secret,
                endpoint=account.endpoint,
                protocol=account.protocol,
            )
        )
        millis = int(timeout_seconds * 1000)
        self._runtime = RuntimeOptions(read_timeout=millis, connect_timeout=millis)
        self._key = f"cams:{account.endpoint}:{account.access_key_id}"

    async def health_status(self, **fields: str) -> Any:
        """The answer's body (the SDK's model) for `NodeType` and the fields it names."""
        self._holds.check(self._key, "Alibaba CAMS")
        await self._slot()
        request = GetWhatsappHealthStatusRequest(cust_space_id=self.account.cust_space_id, **fields)
        try:
            response = await self._client.get_whatsapp_health_status_with_options_async(
                request, self._runtime
            )
        except ThrottlingException as exc:
            wait = (exc.retry_after or 0) / 1000 or DEFAULT_THROTTLE_SECONDS
            self._holds.hold(self._key, wait)
            raise BspThrottled("Alibaba CAMS throttled the AccessKey", retry_after=wait) from None
        except AlibabaCloudException as exc:
            raise self._failure(exc.code, exc.status_code) from None
        except Exception as exc:  # noqa: BLE001 — the SDK raises its transport's errors as they come
            raise UpstreamFailure(f"Alibaba CAMS did not answer: {type(exc).__name__}") from None
        body = getattr(response, "body", None)
        if body is None:
            raise UpstreamFailure("Alibaba CAMS gave an answer without a body")
        if body.code != "OK" or body.success is False:
            raise self._failure(body.code, response.status_code)
        if body.data is None:
            raise UpstreamFailure("Alibaba CAMS answered OK without Data")
        return body

    def _failure(self, code: object, status: object) -> UpstreamFailure:
        text = str(code)
        if text.startswith("Throttling"):
            self._holds.hold(self._key, DEFAULT_THROTTLE_SECONDS)
            return BspThrottled(
                f"Alibaba CAMS throttled the AccessKey ({text})",
                retry_after=DEFAULT_THROTTLE_SECONDS,
            )
        if text.startswith(_AUTH_CODES):
            return UpstreamAuthFailure(f"Alibaba CAMS refused the AccessKey ({text})")
        if text.startswith("NotExists"):
            return UpstreamNotFound(f"Alibaba CAMS does not know the node ({text})")
        return UpstreamFailure(f"Alibaba CAMS answered {text} (HTTP {status})")

    async def _slot(self) -> None:
        """Wait for one of the account's calls per second (Alibaba's limit, shared)."""
        deadline = self._clock() + MAX_SLOT_WAIT_SECONDS
        while True:
            try:
                decision = await self._limiter.acquire(f"bsp:{self._key}", self.account.qps)
            except BackendUnavailable as exc:
                # Without the shared count, pace this process alone at the account's rate.
                log.warning("rate limiter unavailable; pacing CAMS calls locally", error=str(exc))
                await self._sleep(1.0 / self.account.qps)
                return
            if decision.allowed:
                return
            if self._clock() + decision.retry_after > deadline:
                raise BspThrottled(
                    "Alibaba CAMS calls of this AccessKey are at their limit",
                    retry_after=decision.retry_after,
                )
            await self._sleep(max(decision.retry_after, 0.01))
