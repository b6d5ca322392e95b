"""What the dashboard reads and changes, as the interfaces it owns (storage implements them).

The records are described by the attributes the pages read (read-only properties), so
any object with them will do: storage's own dataclasses, or a test's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from wahealth.domain.records import NodeHealth, Subscription, Transition


class SpaceRef(Protocol):
    @property
    def id(self) -> str: ...


class FleetNode(Protocol):
    """One node with its names, catalog status and last known health."""

    @property
    def node_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def space_id(self) -> str: ...
    @property
    def waba_id(self) -> str: ...
    @property
    def waba_name(self) -> str | None: ...
    @property
    def display_phone_number(self) -> str | None: ...
    @property
    def verified_name(self) -> str | None: ...
    @property
    def template_name(self) -> str | None: ...
    @property
    def template_language(self) -> str | None: ...
    @property
    def quality(self) -> str | None: ...
    @property
    def limit_tier(self) -> str | None: ...
    @property
    def meta_status(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def error_codes(self) -> tuple[str, ...]: ...
    @property
    def fetched_at(self) -> datetime | None: ...


class FleetPage(Protocol):
    @property
    def nodes(self) -> Sequence[FleetNode]: ...
    @property
    def total(self) -> int: ...
    @property
    def counts(self) -> Mapping[str, int]: ...


class StatusChange(Protocol):
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str: ...


class AlertView(Protocol):
    """One alert with its target and the node whose change it reports."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def next_attempt_at(self) -> datetime: ...
    @property
    def delivered_at(self) -> datetime | None: ...
    @property
    def url(self) -> str: ...
    @property
    def space_id(self) -> str: ...
    @property
    def node_id(self) -> str: ...


class Spaces(Protocol):
    """The spaces of an account: the tenancy repository."""

    async def list_spaces(self, account: str | None = None) -> Sequence[SpaceRef]: ...


class Fleet(Protocol):
    """The account's nodes, filtered, searched, sorted and paged by the database."""

    async def page(
        self,
        account: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        space_id: str | None = None,
        search: str | None = None,
        sort: str = ...,
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> FleetPage: ...

    async def node(self, account: str, node_id: str) -> FleetNode | None: ...

    async def kept_fields(self, node_id: str, kind: str) -> Mapping[str, str | None]: ...

    async def status_changes(
        self, node_id: str, since: datetime
    ) -> tuple[str | None, Sequence[StatusChange]]: ...


class HealthLog(Protocol):
    """A node's stored report and its transitions: the health repository."""

    async def get(self, node_id: str) -> NodeHealth | None: ...

    async def history(
        self, node_id: str, limit: int = 50, before_id: int | None = None
    ) -> Sequence[Transition]: ...


class Alerts(Protocol):
    """The account's outbox and subscriptions."""

    async def alerts(
        self, account: str, *, state: str | None = None, offset: int = 0, limit: int = 50
    ) -> Sequence[AlertView]: ...

    async def alerts_of_node(
        self, account: str, node_id: str, limit: int = 50
    ) -> Sequence[AlertView]: ...

    async def counts(self, account: str) -> Mapping[str, int]: ...

    async def subscriptions(self, account: str) -> Sequence[Subscription]: ...

    async def retry_dead(self, account: str, alert_id: str) -> str: ...


class SignOuts(Protocol):
    """Sessions signed out before their cookies expire: refused until then."""

    async def sign_out(self, session_id: str, expires_at: datetime) -> None: ...

    async def signed_out(self, session_id: str) -> bool: ...


class ConnectionTrouble(Protocol):
    """Meta connections whose token Meta refuses, among those these spaces use."""

    async def refused_for(
        self, space_ids: Sequence[str]
    ) -> Sequence[tuple[str, str | None, tuple[str, ...]]]:
        """(connection, Meta's reason, the given spaces that use it), by name."""
        ...
