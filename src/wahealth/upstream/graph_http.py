"""One Graph call over httpx: bounded retries, a capped body, Meta's errors as ours.

`GraphHttp` owns the `httpx.AsyncClient` (and so the transport seam: Meta, the
emulator over a socket, or the emulator in-process); `GraphClient` builds the calls.
The token travels only in the `Authorization` header (with `appsecret_proof` beside it
when the credentials carry an app secret) and is never logged.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
import structlog

from wahealth import __version__
from wahealth.upstream.errors import (
    GraphBadResponse,
    GraphError,
    GraphRateLimited,
    GraphTransientError,
    graph_error_from,
)
from wahealth.upstream.graph_answers import decode_json
from wahealth.upstream.graph_credentials import APPSECRET_PROOF, GraphCredentials

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024

Sleep = Callable[[float], Awaitable[None]]
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# How many calls Meta counts for a request (a batch: one per sub-request), in its extensions:
# a transport that counts them (the metrics) need not decode the body.
META_CALLS_EXTENSION = "wahealth.meta_calls"


class RetryLogger(Protocol):
    """Where retry warnings go (a structlog logger by default)."""

    def warning(self, event: str, **fields: Any) -> Any: ...


class GraphHttp:
    """Graph calls over one httpx client, retried on transient failures and short rate
    limits with capped, jittered exponential backoff."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: GraphCredentials,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        sleep: Sleep,
        logger: RetryLogger | None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._log: RetryLogger = logger if logger is not None else log
        self.credentials = credentials
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": f"wahealth/{__version__}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        form: bytes | None = None,
        attempts: int | None = None,
        decode: Callable[[bytes], Any] | None = None,
        meta_calls: int = 1,
        credentials: GraphCredentials | None = None,
    ) -> Any:
        """One Graph call (`form`: an urlencoded body; `meta_calls`: how many calls Meta
        counts for it; `credentials`: the connection's, else the client's), retried as the
        client allows."""
        creds = credentials or self.credentials
        max_attempts = self.max_attempts if attempts is None else max(1, attempts)
        attempt = 1
        while True:
            try:
                return await self._attempt(
                    method, path, params, form, decode or decode_json, meta_calls, creds
                )
            except (GraphTransientError, GraphRateLimited) as exc:
                delay = self._retry_delay(exc, attempt, max_attempts)
                if delay is None:
                    raise
                self._log.warning(
                    "graph call failed, retrying",
                    method=method,
                    path=path,
                    attempt=attempt,
                    delay=round(delay, 3),
                    error=type(exc).__name__,
                    code=exc.code,
                    http_status=exc.http_status,
                )
            attempt += 1
            await self._sleep(delay)

    def _retry_delay(self, exc: GraphError, attempt: int, max_attempts: int) -> float | None:
        """Seconds before the next attempt, or None to give up now."""
        if attempt >= max_attempts:
            return None
        if isinstance(exc, GraphRateLimited) and exc.retry_after is not None:
            # A long wait is the caller's call (serve stale, reschedule), not ours.
            return exc.retry_after if exc.retry_after <= self.backoff_max else None
        cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, cap)

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        form: bytes | None,
        decode: Callable[[bytes], Any],
        meta_calls: int,
        credentials: GraphCredentials,
    ) -> Any:
        headers = {"Authorization": credentials.authorization}
        if form is not None:
            headers["Content-Type"] = FORM_CONTENT_TYPE
        if credentials.proof is not None:
            params = {**(params or {}), APPSECRET_PROOF: credentials.proof}
        try:
            request = self._client.build_request(
                method,
                path,
                params=params,
                content=form,
                headers=headers,
                extensions={META_CALLS_EXTENSION: meta_calls},
            )
            response = await self._client.send(request, stream=True)
            try:
                body = await _read_capped(response, MAX_BODY_BYTES)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise GraphTransientError(f"Graph timed out: {type(exc).__name__}") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise GraphTransientError(f"cannot reach Graph: {type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise GraphBadResponse(f"Graph sent a body that cannot be decoded: {exc}") from exc
        except httpx.HTTPError as exc:
            raise GraphError(f"Graph request failed: {type(exc).__name__}: {exc}") from exc
        payload = None
        if body is not None:
            try:
                payload = decode(body)
            except GraphBadResponse:
                if response.is_success:
                    raise
                # Otherwise the status alone says what failed.
        if response.is_success:
            if body is None:
                raise GraphBadResponse(f"Graph answered with more than {MAX_BODY_BYTES} bytes")
            if not (isinstance(payload, dict) and "error" in payload):
                return payload
        raise graph_error_from(response.status_code, payload, response.headers)


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than `limit` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
