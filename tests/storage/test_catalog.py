"""The catalog: replacing a WABA's numbers and templates, and resolving names to node ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from wahealth.domain.model import NodeKind
from wahealth.storage.catalog import (
    CatalogRepository,
    NodeRef,
    PhoneNumberRecord,
    ReplaceSummary,
    TemplateRecord,
)
from wahealth.storage.errors import Conflict, UnknownWaba
from wahealth.storage.tenancy import TenancyRepository

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 2, tzinfo=UTC)

NUMBERS = [
    PhoneNumberRecord("106540352242922", "+86 138-0000-0001", "Acme", "GREEN"),
    PhoneNumberRecord("105154286024403", "+86 138 0000 0002", None, "YELLOW"),
]
TEMPLATES = [
    TemplateRecord("2632273056924580", "order_update", "en", "PENDING", "UTILITY"),
    TemplateRecord("2632273056924581", "order_update", "id", "APPROVED", "UTILITY"),
]


async def test_replace_phone_numbers_upserts_and_deletes_missing(
    catalog: CatalogRepository, acme: str
) -> None:
    assert await catalog.replace_phone_numbers("waba-1", NUMBERS, T0) == ReplaceSummary(2, 0, 0)
    assert await catalog.replace_phone_numbers("waba-1", NUMBERS, T1) == ReplaceSummary(0, 0, 0)

    renamed = PhoneNumberRecord("106540352242922", "+86 138-0000-0001", "Acme Ltd", "GREEN")
    added = PhoneNumberRecord("106540352242999", "8613800000009")
    summary = await catalog.replace_phone_numbers("waba-1", [renamed, added], T1)
    assert summary == ReplaceSummary(added=1, updated=1, removed=1)

    stored = await catalog.phone_numbers_of_waba("waba-1")
    assert [(n.id, n.digits, n.verified_name, n.synced_at) for n in stored] == [
        ("106540352242922", "8613800000001", "Acme Ltd", T1),
        ("106540352242999", "8613800000009", None, T1),
    ]
    assert await catalog.phone_number_by_digits(acme, "8613800000002") is None
    with pytest.raises(UnknownWaba):
        await catalog.replace_phone_numbers("waba-404", NUMBERS)


async def test_replace_templates_handles_a_recreated_template(
    catalog: CatalogRepository, acme: str
) -> None:
    assert await catalog.replace_templates("waba-1", TEMPLATES, T0) == ReplaceSummary(2, 0, 0)
    # Deleted and re-created in Meta: same name and language, new id.
    recreated = TemplateRecord("2632273056924599", "order_update", "en", "APPROVED", "UTILITY")
    summary = await catalog.replace_templates("waba-1", [recreated, TEMPLATES[1]], T1)
    assert summary == ReplaceSummary(added=1, updated=0, removed=1)
    assert [(t.id, t.language, t.status) for t in await catalog.templates_of_waba("waba-1")] == [
        ("2632273056924599", "en", "APPROVED"),
        ("2632273056924581", "id", "APPROVED"),
    ]
    assert await catalog.template_by_code(acme, "order_update", "en") == (
        "2632273056924599",
        "waba-1",
    )


async def test_a_failed_replace_changes_nothing(catalog: CatalogRepository, acme: str) -> None:
    await catalog.replace_templates("waba-1", TEMPLATES, T0)
    clash = [
        TemplateRecord("t-a", "same", "en", "APPROVED"),
        TemplateRecord("t-b", "same", "en", "APPROVED"),
    ]
    with pytest.raises(Conflict):
        await catalog.replace_templates("waba-1", clash, T1)
    assert [t.id for t in await catalog.templates_of_waba("waba-1")] == [
        "2632273056924580",
        "2632273056924581",
    ]


async def test_lookups_stay_within_the_space(
    catalog: CatalogRepository, tenancy: TenancyRepository, acme: str
) -> None:
    await catalog.replace_phone_numbers("waba-1", NUMBERS)
    await catalog.replace_templates("waba-1", TEMPLATES)
    await tenancy.upsert_account("rival")
    await tenancy.upsert_space("rival-space", "rival")
    await tenancy.upsert_waba("waba-r", "rival-space")
    await catalog.replace_phone_numbers("waba-r", [PhoneNumberRecord("rival-phone", "+1 555 0100")])

    assert await catalog.phone_number_by_digits(acme, "8613800000001") == (
        "106540352242922",
        "waba-1",
    )
    assert await catalog.phone_number_by_digits(acme, "+86 138 0000 0002") == (
        "105154286024403",
        "waba-1",
    )
    assert await catalog.phone_number_by_digits(acme, "15550100") is None
    assert await catalog.phone_number_by_digits("rival-space", "15550100") == (
        "rival-phone",
        "waba-r",
    )
    assert await catalog.template_by_code(acme, "order_update", "id") == (
        "2632273056924581",
        "waba-1",
    )
    assert await catalog.template_by_code(acme, "order_update", "fr") is None
    assert await catalog.template_by_code("rival-space", "order_update", "en") is None
    assert await catalog.template_by_code(acme, "order_update", "en", waba_id="waba-other") is None

    assert await catalog.node_in_account("106540352242922", "acme") == acme
    assert await catalog.node_in_account("2632273056924580", "acme") == acme
    assert await catalog.node_in_account("waba-1", "acme") == acme
    assert await catalog.node_in_account("waba-1", "rival") is None
    assert await catalog.node_in_account("rival-phone", "acme") is None
    assert await catalog.node_in_account("unknown", "acme") is None
    assert await catalog.account_of_space(acme) == "acme"
    assert await catalog.wabas_of_space(acme) == ["waba-1"]


async def test_nodes_for_monitoring(
    catalog: CatalogRepository, tenancy: TenancyRepository, acme: str
) -> None:
    await catalog.replace_phone_numbers("waba-1", NUMBERS[:1])
    await catalog.replace_templates("waba-1", TEMPLATES[:1])
    await tenancy.upsert_account("idle")
    await tenancy.upsert_space("idle-space", "idle")
    await tenancy.upsert_waba("waba-idle", "idle-space")
    await tenancy.disable_account("idle")

    expected = [
        NodeRef("2632273056924580", NodeKind.MESSAGE_TEMPLATE, acme),
        NodeRef("106540352242922", NodeKind.PHONE_NUMBER, acme),
        NodeRef("waba-1", NodeKind.WABA, acme),
    ]
    assert await catalog.nodes_of_space(acme) == expected
    assert await catalog.all_nodes() == expected
    assert await catalog.all_nodes(include_disabled=True) == [
        *expected,
        NodeRef("waba-idle", NodeKind.WABA, "idle-space"),
    ]


async def test_a_replace_says_whether_anything_changed(
    catalog: CatalogRepository, acme: str
) -> None:
    added = await catalog.replace_phone_numbers("waba-1", NUMBERS)
    again = await catalog.replace_phone_numbers("waba-1", NUMBERS)
    emptied = await catalog.replace_phone_numbers("waba-1", [])
    assert added.changed
    assert not again.changed
    assert emptied.changed


async def test_any_record_with_the_right_fields_is_accepted(
    catalog: CatalogRepository, acme: str
) -> None:
    """Records come straight from the Graph client; extra fields and a missing status are fine."""

    @dataclass(frozen=True)
    class FromGraph:
        id: str
        name: str
        language: str
        status: str | None
        category: str | None
        quality_score: str

    await catalog.replace_templates("waba-1", [FromGraph("t1", "hello", "en", None, None, "HIGH")])
    [stored] = await catalog.templates_of_waba("waba-1")
    assert (stored.id, stored.status, stored.category) == ("t1", None, None)


async def test_a_big_replace_moves_updates_and_removes_in_bulk(
    catalog: CatalogRepository, tenancy: TenancyRepository, acme: str
) -> None:
    await tenancy.upsert_waba("waba-2", acme)
    # More rows than one IN (...) chunk; some move in from another WABA of the space.
    first = [PhoneNumberRecord(f"92{i:013d}", f"+1 555-{i:07d}") for i in range(1200)]
    assert await catalog.replace_phone_numbers("waba-2", first[:300], T0) == ReplaceSummary(
        300, 0, 0
    )
    assert await catalog.replace_phone_numbers("waba-1", first[300:], T0) == ReplaceSummary(
        900, 0, 0
    )
    renamed = PhoneNumberRecord(first[400].id, first[400].display_phone_number, "Renamed")
    wanted = [*first[:250], renamed, *first[500:]]  # 250 moved here, 1 renamed, 199 dropped
    summary = await catalog.replace_phone_numbers("waba-1", wanted, T1)
    assert summary == ReplaceSummary(added=0, updated=251, removed=199)
    stored = {n.id: n for n in await catalog.phone_numbers_of_waba("waba-1")}
    assert sorted(stored) == sorted(r.id for r in wanted)
    assert stored[first[400].id].verified_name == "Renamed"
    assert {n.synced_at for n in stored.values()} == {T1}
    assert [n.id for n in await catalog.phone_numbers_of_waba("waba-2")] == [
        r.id for r in first[250:300]
    ]
    ref = await catalog.phone_number_by_digits(acme, "15550000007")
    assert ref is not None
    assert ref.waba_id == "waba-1"
