"""Alert subscriptions of a space through the admin use cases: list, add, change, remove.

A tenant's token manages its own spaces' subscriptions. A new URL is checked as the
CLI checks it (http or https, and unless `alerts.allow_private_targets`, a public
address), so a subscription that could never be delivered is refused up front.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from wahealth.admin import schemas
from wahealth.admin.errors import Invalid
from wahealth.admin.service import AdminBase
from wahealth.admin.tokens import Caller
from wahealth.domain.records import Subscription
from wahealth.storage.errors import UnknownSpace, UnknownSubscription
from wahealth.storage.outbox import KEEP, OutboxRepository


def _host(url: str) -> str | None:
    """What the audit log keeps of a webhook URL: its host (a Slack URL's path is a secret)."""
    return urlsplit(url).hostname


def shown_subscription(sub: Subscription) -> schemas.Subscription:
    return schemas.Subscription(
        id=sub.id,
        space=sub.space_id,
        url=sub.url,
        on=list(sub.on_events),
        format=sub.format.value,
        signed=sub.secret_encrypted is not None,
        created_at=sub.created_at,
        paused_at=sub.disabled_at,
    )


class Subscriptions(AdminBase):
    """Webhook subscriptions to a space's alerts."""

    @property
    def _outbox(self) -> OutboxRepository:
        assert self.stores.outbox is not None, "subscriptions need the outbox"
        return self.stores.outbox

    async def _space_account(self, caller: Caller, space_id: str) -> str:
        owner = await self.stores.tenancy.account_of_space(space_id)
        if owner is None or not caller.manages(owner):
            raise UnknownSpace(space_id)
        return owner

    async def _subscription(self, caller: Caller, ref: str) -> tuple[Subscription, str]:
        found = None
        if ref.isascii() and ref.isdigit() and len(ref) < 18:
            found = await self._outbox.get_subscription(int(ref))
        owner = (
            None if found is None else await self.stores.tenancy.account_of_space(found.space_id)
        )
        if found is None or owner is None or not caller.manages(owner):
            raise UnknownSubscription(int(ref) if ref.isascii() and ref.isdigit() else -1)
        return found, owner

    async def list(self, caller: Caller, space_id: str) -> list[schemas.Subscription]:
        await self._space_account(caller, space_id)
        found = await self._outbox.list_subscriptions(space_id, include_disabled=True)
        return [shown_subscription(sub) for sub in found]

    async def add(
        self, caller: Caller, space_id: str, body: schemas.SubscriptionCreate
    ) -> schemas.Subscription:
        account = await self._space_account(caller, space_id)
        refusal = await self.stores.check_target(body.url)
        if refusal is not None:
            raise Invalid(f"target refused: {refusal}")
        secret = None if body.secret is None else self.stores.secretbox.encrypt(body.secret)
        created = await self._outbox.add_subscription(
            space_id, body.url, on_events=body.on, format=body.format, secret_encrypted=secret
        )
        await self.changed(
            caller,
            "subscription.add",
            f"subscription:{created.id}",
            account,
            space=space_id,
            host=_host(body.url),
            on=list(created.on_events),
        )
        return shown_subscription(created)

    async def update(
        self, caller: Caller, ref: str, body: schemas.SubscriptionUpdate
    ) -> schemas.Subscription:
        found, account = await self._subscription(caller, ref)
        outbox = self._outbox
        changes: dict[str, object] = {}
        if body.on is not None or body.format is not None or body.secret is not None:
            kept = await outbox.update_subscription(
                found.id,
                on_events=KEEP if body.on is None else body.on,
                format=KEEP if body.format is None else body.format,
                secret_encrypted=(
                    KEEP if body.secret is None else self.stores.secretbox.encrypt(body.secret)
                ),
            )
            changes.update(on=list(kept.on_events), format=kept.format.value)
            changes["secret_changed"] = body.secret is not None
        if body.paused is not None:
            await outbox.set_subscription_disabled(found.id, body.paused)
            changes["paused"] = body.paused
        await self.changed(
            caller, "subscription.update", f"subscription:{found.id}", account, **changes
        )
        updated = await outbox.get_subscription(found.id)
        assert updated is not None
        return shown_subscription(updated)

    async def remove(self, caller: Caller, ref: str) -> schemas.SubscriptionRemoved:
        found, account = await self._subscription(caller, ref)
        if not await self._outbox.remove_subscription(found.id):
            raise UnknownSubscription(found.id)
        await self.changed(
            caller,
            "subscription.remove",
            f"subscription:{found.id}",
            account,
            host=_host(found.url),
        )
        return schemas.SubscriptionRemoved(id=found.id, dropped_alerts=True)
