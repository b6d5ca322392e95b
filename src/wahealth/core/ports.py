"""What the use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from wahealth.domain import HealthReport


class HealthUpstream(Protocol):
    """Where fresh reports come from (the Graph client, against Meta or the emulator)."""

    async def health(self, node_id: str) -> HealthReport: ...

    async def batch_health(
        self, node_ids: Sequence[str]
    ) -> Mapping[str, HealthReport | Exception]: ...


class ReportObserver(Protocol):
    """Told about every report fetched from upstream (the monitor records transitions)."""

    async def __call__(self, report: HealthReport, cause: str) -> None: ...


class CredentialStore(Protocol):
    """Credential lookups, by AccessKey id or by a key/token hash."""

    async def access_key(self, key_id: str) -> tuple[str, int, str, bool] | None:
        """(account name, account qps, encrypted secret, revoked) for an AccessKey id."""
        ...

    async def d360_key(self, key_hash: str) -> tuple[str, int, str] | None:
        """(account name, account qps, phone_number_id) for an unrevoked 360dialog key."""
        ...

    async def graph_token(self, token_hash: str) -> tuple[str, int] | None:
        """(account name, account qps) for an unrevoked Graph token."""
        ...


class CatalogStore(Protocol):
    """Which spaces, WABAs, numbers and templates exist and who owns them."""

    async def account_of_space(self, space_id: str) -> str | None: ...

    async def phone_number_by_digits(self, space_id: str, digits: str) -> tuple[str, str] | None:
        """(phone_number_id, waba_id) of a number within a space."""
        ...

    async def template_by_code(
        self, space_id: str, name: str, language: str
    ) -> tuple[str, str] | None:
        """(template_id, waba_id) of a template within a space."""
        ...

    async def node_in_account(self, node_id: str, account_name: str) -> str | None:
        """The space id if the phone number, template or WABA belongs to the account."""
        ...

    async def wabas_of_space(self, space_id: str) -> list[str]: ...


class CatalogSource(Protocol):
    """Where the catalog comes from: Meta's /phone_numbers and /message_templates."""

    async def sync_waba(self, waba_id: str) -> object: ...
