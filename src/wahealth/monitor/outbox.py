"""Deliver the persisted alert outbox: signed POSTs, retries with backoff, dead after N.

Alerts are committed with the transition they report; this sender only moves
them along. Every replica runs one; each claims due rows under its replica id
(a lease, `[monitor] outbox_lease_seconds`, hides them from the other senders
and counts an attempt), POSTs each to its subscription's URL (or mails it, for
an e-mail subscription: see `email`) and records the outcome with its claim,
which is refused if the lease ran out and another sender has the alert now. A
sender killed mid-delivery leaves its rows leased; after the lease they are due
again for any sender, so every alert is delivered at least once. A receiver can
make that exactly once by remembering `X-Wahealth-Alert-Id`, which never
changes across retries or senders.

Outcomes: any 2xx is delivered; 410 Gone means the receiver is gone for good
and parks the alert as dead at once (like an invalid URL); every other status,
a redirect (never followed), a timeout or a connection error is retried after
an exponentially growing, jittered delay (`Retry-After` is honoured when
longer) until `max_attempts`, then the alert is dead. Dead alerts are kept and
can be retried (`wahealth alerts retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import structlog

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.domain.records import AlertFormat, Claim, Delivery
from wahealth.monitor import email, payloads, targets
from wahealth.monitor.targets import CheckedTarget, InvalidTarget, Resolver, TargetError
from wahealth.settings import SmtpSettings
from wahealth.storage.errors import LostClaim, StorageError
from wahealth.storage.outbox import OutboxRepository

log = structlog.get_logger(__name__)

USER_AGENT = "wahealth-alerts/1"
_ERROR_BODY_BYTES = 200
_PERMANENT_STATUSES = frozenset({410})


class _Permanent(Exception):
    """This alert can never be delivered as it stands: park it as dead now."""


class _Failed(Exception):
    """This attempt failed; try again later (`retry_after`: what the receiver asked for)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _utcnow() -> datetime:
    return datetime.now(UTC)


def default_replica_id() -> str:
    """This process's name among the senders: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def backoff_delay(
    attempt: int, base: float, cap: float, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Exponential (base, 2*base, 4*base, ... capped at `cap`) with "equal
    jitter": between half the step and the full step, so retries from many
    alerts spread out yet never come back immediately.
    """
    step = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 64))
    return step / 2 + step / 2 * jitter()


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class OutboxSender:
    """Delivers due alerts; `run` is the loop the monitor starts, `deliver_due` one step."""

    def __init__(
        self,
        outbox: OutboxRepository,
        secretbox: SecretBox,
        *,
        allow_private_targets: bool,
        max_attempts: int,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = _utcnow,
        backoff_base_seconds: float = 2.0,
        backoff_max_seconds: float = 3600.0,
        timeout_seconds: float = 10.0,
        poll_interval_seconds: float = 2.0,
        concurrency: int = 8,
        resolver: Resolver | None = None,
        jitter: Callable[[], float] = random.random,
        smtp: SmtpSettings | None = None,
        lease_seconds: float = 60.0,
        replica_id: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._outbox = outbox
        self._secretbox = secretbox
        self._allow_private = allow_private_targets
        self._max_attempts = max_attempts
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,
            # Proxies from the environment would resolve the host themselves and
            # defeat the address check; alerts go out directly.
            trust_env=False,
            timeout=timeout_seconds,
            headers={"User-Agent": USER_AGENT},
        )
        self._clock = clock
        self._base = backoff_base_seconds
        self._cap = backoff_max_seconds
        self._timeout = timeout_seconds
        self._poll = poll_interval_seconds
        self._concurrency = max(1, concurrency)
        self._resolver = resolver
        self._jitter = jitter
        self._smtp = smtp or SmtpSettings()
        # Should outlast one claimed chunk's delivery (concurrent, two timeouts at most).
        self._lease = timedelta(seconds=lease_seconds)
        self.replica_id = replica_id or default_replica_id()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (a new alert was committed)."""
        self._wake.set()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; storage errors are logged and retried next round."""
        while not stop.is_set():
            self._wake.clear()
            try:
                handled = await self.deliver_due()
            except StorageError as exc:
                log.warning("alert delivery round failed", error=str(exc))
                handled = 0
            except Exception:
                # The loop outlives any one bad round; the alerts' leases bring them back.
                log.exception("alert delivery round crashed")
                handled = 0
            if handled and not stop.is_set():
                continue  # there may be more due right now
            await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def deliver_due(self, limit: int = 100) -> int:
        """Claim and deliver up to `limit` due alerts; returns how many were attempted."""
        handled = 0
        while handled < limit:
            now = self._clock()
            # A read first: idle polls should not take SQLite's write lock.
            if not await self._outbox.due(now, 1):
                break
            chunk = min(self._concurrency, limit - handled)
            claimed = await self._outbox.claim(now, chunk, self._lease, by=self.replica_id)
            if not claimed:
                break
            await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
            handled += len(claimed)
        return handled

    async def _deliver(self, delivery: Delivery) -> None:
        item = delivery.item
        bound = log.bind(
            alert_id=item.id, subscription_id=delivery.subscription.id, attempt=item.attempts
        )
        held = item.claim
        if held is not None and self._clock() >= held.until:
            # Its siblings took the whole lease: the alert is any sender's again.
            bound.warning("alert lease ran out before delivery; left to the next claim")
            return
        try:
            if item.attempts > self._max_attempts:
                # Claimed, then the sender died before marking it, too many times.
                raise _Permanent(f"gave up after {item.attempts - 1} interrupted attempts")
            await self._post(delivery)
        except _Permanent as exc:
            await self._dead(item.id, held, str(exc), bound)
        except _Failed as exc:
            await self._failed(delivery, exc, bound)
        except Exception as exc:  # noqa: BLE001 — logged with its traceback just below
            # A bug must not leave the alert leased and its siblings unmarked.
            bound.exception("unexpected error while delivering an alert")
            await self._failed(delivery, _Failed(f"unexpected error: {type(exc).__name__}"), bound)
        else:
            delivered = self._outbox.mark_delivered(item.id, self._clock(), held=held)
            if await self._mark(delivered, bound):
                bound.info("alert delivered")

    async def _failed(
        self, delivery: Delivery, exc: _Failed, bound: structlog.typing.FilteringBoundLogger
    ) -> None:
        item = delivery.item
        held = item.claim
        if item.attempts >= self._max_attempts:
            reason = f"{exc} (gave up after {item.attempts} attempts)"
            await self._dead(item.id, held, reason, bound)
            return
        delay = backoff_delay(item.attempts, self._base, self._cap, self._jitter)
        if exc.retry_after is not None:
            delay = min(max(delay, exc.retry_after), self._cap)
        next_at = self._clock() + timedelta(seconds=delay)
        failed = self._outbox.mark_failed(item.id, str(exc), next_at, held=held)
        if await self._mark(failed, bound):
            bound.info("alert delivery failed", reason=str(exc), retry_in=round(delay, 1))

    async def _dead(
        self,
        alert_id: str,
        held: Claim | None,
        reason: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        if await self._mark(self._outbox.mark_dead(alert_id, reason, held=held), bound):
            bound.warning("alert parked as dead", reason=reason)

    @staticmethod
    async def _mark(
        update: Awaitable[object], bound: structlog.typing.FilteringBoundLogger
    ) -> bool:
        """Record an outcome; False if it was not (the claim was lost, or storage failed)."""
        # If the mark cannot be stored the lease runs out and the alert is sent again;
        # receivers deduplicate on the alert id.
        try:
            await update
        except LostClaim:
            bound.warning("alert lease ran out during delivery; the next claim's outcome stands")
            return False
        except StorageError as exc:
            bound.error("cannot record alert outcome", error=str(exc))
            return False
        return True

    async def _post(self, delivery: Delivery) -> None:
        subscription = delivery.subscription
        if subscription.format is AlertFormat.EMAIL:
            try:
                await email.send(delivery.item, subscription.url, self._smtp)
            except email.MailRefused as exc:
                raise _Permanent(str(exc)) from exc
            except email.MailFailed as exc:
                raise _Failed(str(exc)) from exc
            return
        try:
            async with asyncio.timeout(self._timeout):
                target = await targets.check_target(
                    subscription.url, allow_private=self._allow_private, resolver=self._resolver
                )
        except InvalidTarget as exc:
            raise _Permanent(f"invalid target: {exc}") from exc
        except TargetError as exc:
            raise _Failed(f"target refused: {exc}") from exc
        except TimeoutError as exc:
            raise _Failed(f"resolving the host timed out after {self._timeout:g}s") from exc
        body = payloads.render(delivery.item, subscription.format)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            payloads.ALERT_ID_HEADER: delivery.item.id,
            payloads.EVENT_HEADER: delivery.item.event,
        }
        if subscription.secret_encrypted is not None:
            try:
                secret = self._secretbox.decrypt(subscription.secret_encrypted)
            except SecretBoxError as exc:
                raise _Failed(f"cannot decrypt the subscription secret: {exc}") from exc
            timestamp = int(self._clock().timestamp())
            headers[payloads.SIGNATURE_HEADER] = payloads.sign(secret, timestamp, body)
        request = self._request(target, body, headers)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
                try:
                    snippet = await self._snippet(response)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise _Failed(f"timed out after {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise _Failed(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        if status in _PERMANENT_STATUSES:
            raise _Permanent(message)
        if response.is_redirect:
            location = response.headers.get("location", "?")
            raise _Failed(f"HTTP {status} redirect to {location} (redirects are not followed)")
        raise _Failed(message, _retry_after(response, self._clock()))

    def _request(
        self, target: CheckedTarget, body: bytes, headers: dict[str, str]
    ) -> httpx.Request:
        url = target.url
        extensions: dict[str, object] = {}
        if target.addresses:
            # Connect to the address just checked, not whatever the name resolves to next.
            headers["Host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = url.host
            url = url.copy_with(host=target.addresses[0])
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, timeout=self._timeout
        )
        request.extensions.update(extensions)
        return request

    @staticmethod
    async def _snippet(response: httpx.Response) -> str:
        """The start of an error answer, for the operator; never the whole (unbounded) body."""
        if 200 <= response.status_code < 300:
            return ""
        data = b""
        with contextlib.suppress(httpx.HTTPError):
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= _ERROR_BODY_BYTES:
                    break
        text = data[:_ERROR_BODY_BYTES].decode("utf-8", errors="replace")
        return " ".join(text.split())
