"""Apply `[[alerts.subscriptions]]` from the config at every start, idempotently.

An entry may name several channels (`url`, `slack`, `email`); each is stored as a
subscription of its own (an e-mail one under the URL `mailto:a@x,b@y`).

The config is the source of truth for the subscriptions it names (by space and
URL): a missing one is added, one whose secret, events or format changed is
updated in place, keeping its id, its pause and its undelivered alerts (they go
out with the new secret and format, since alerts are rendered and signed at
delivery). Nothing is ever removed: an entry deleted from the config leaves its
subscription stored, like the ones added with the CLI, because removing one
drops its undelivered alerts and that takes an explicit `wahealth alerts
remove`. A bad target stops the start with a message naming the entry, rather
than failing every delivery later.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.domain.records import AlertFormat, Subscription
from wahealth.monitor.email import mailto
from wahealth.monitor.targets import TargetError, TargetUnresolvable, check_target
from wahealth.settings import Settings, SubscriptionConfig
from wahealth.storage.errors import UnknownSpace
from wahealth.storage.outbox import OutboxRepository

log = structlog.get_logger(__name__)


class SubscriptionConfigError(Exception):
    """An `[[alerts.subscriptions]]` entry cannot be applied; the message names it."""


@dataclass(frozen=True, slots=True)
class _Channel:
    """One channel of a configured subscription, as it is stored."""

    space: str
    url: str
    format: AlertFormat
    secret: str | None
    on: tuple[str, ...]


def channels(wanted: SubscriptionConfig) -> list[_Channel]:
    """The stored subscriptions one config entry stands for: a webhook, Slack, e-mail."""
    on = tuple(dict.fromkeys(wanted.on))
    found = []
    if wanted.url is not None:
        found.append(
            _Channel(wanted.space, wanted.url, AlertFormat(wanted.format), wanted.secret, on)
        )
    if wanted.slack is not None:
        found.append(_Channel(wanted.space, wanted.slack, AlertFormat.SLACK, wanted.secret, on))
    if wanted.email:
        url = mailto(wanted.email)
        found.append(_Channel(wanted.space, url, AlertFormat.EMAIL, None, on))
    return found


async def apply_subscriptions(
    settings: Settings, outbox: OutboxRepository, secretbox: SecretBox
) -> None:
    """Make storage hold the configured subscriptions (add or update; never remove any)."""
    allow_private = settings.alerts.allow_private_targets
    entries = [
        (f"alerts.subscriptions[{position}] (space {wanted.space!r}, {channel.url!r})", channel)
        for position, wanted in enumerate(settings.alerts.subscriptions)
        for channel in channels(wanted)
    ]
    # Every target first: a bad entry changes nothing at all.
    for where, channel in entries:
        if channel.format is AlertFormat.EMAIL:
            continue
        try:
            await check_target(channel.url, allow_private=allow_private)
        except TargetUnresolvable as exc:
            # DNS may be down at start; each delivery checks the address again anyway.
            log.warning("alert target does not resolve now", entry=where, error=str(exc))
        except TargetError as exc:
            hint = "" if allow_private else " (alerts.allow_private_targets = true allows it)"
            raise SubscriptionConfigError(f"{where}: {exc}{hint}") from exc
    for where, channel in entries:
        await _apply_one(channel, where, outbox, secretbox)


def _encrypted(secretbox: SecretBox, secret: str | None) -> str | None:
    return None if secret is None else secretbox.encrypt(secret)


async def _apply_one(
    wanted: _Channel, where: str, outbox: OutboxRepository, secretbox: SecretBox
) -> None:
    stored = next(
        (
            s
            for s in await outbox.list_subscriptions(wanted.space, include_disabled=True)
            if s.url == wanted.url
        ),
        None,
    )
    if stored is not None:
        if _same(stored, wanted, secretbox):
            return
        await outbox.update_subscription(
            stored.id,
            secret_encrypted=_encrypted(secretbox, wanted.secret),
            on_events=wanted.on,
            format=wanted.format,
        )
        # Never the secret itself, not even encrypted.
        log.info(
            "alert subscription updated from the config",
            subscription_id=stored.id,
            space_id=wanted.space,
        )
        return
    try:
        created = await outbox.add_subscription(
            wanted.space,
            wanted.url,
            on_events=wanted.on,
            format=wanted.format,
            secret_encrypted=_encrypted(secretbox, wanted.secret),
        )
    except UnknownSpace as exc:
        raise SubscriptionConfigError(f"{where}: there is no space {wanted.space!r}") from exc
    log.info("alert subscription added from the config", subscription_id=created.id)


def _same(stored: Subscription, wanted: _Channel, secretbox: SecretBox) -> bool:
    if stored.on_events != wanted.on:
        return False
    if stored.format is not wanted.format:
        return False
    if stored.secret_encrypted is None:
        return wanted.secret is None
    if wanted.secret is None:
        return False
    try:
        return secretbox.decrypt(stored.secret_encrypted) == wanted.secret
    except SecretBoxError:
        return False
