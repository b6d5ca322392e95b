"""BSP upstreams between the configuration, storage and the router.

A space's BSP settings are stored at each start (`store_space_upstream`): what is not
secret as JSON, the API keys and the AccessKey secret as one document encrypted with the
master key. The router is configured from storage, not from the file, so every replica
(and a space changed by the admin API) reads the same thing (`start_bsp_upstreams`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from wahealth.auth.secretbox import SecretBox, SecretBoxError
from wahealth.core.ports import CatalogSource
from wahealth.settings import SpaceConfig
from wahealth.settings_bsp import CamsUpstreamConfig, D360ChannelConfig
from wahealth.storage.space_upstreams import SpaceUpstreamRepository, StoredUpstream
from wahealth.storage.tenancy import TenancyRepository
from wahealth.upstream.bsp.config import BspSpace, CamsAccount, CamsTemplate, D360Channel
from wahealth.upstream.bsp.router import BspRouter

log = structlog.get_logger(__name__)


def stored_upstream(
    upstream: str, channels: Sequence[D360ChannelConfig], cams: CamsUpstreamConfig | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, secrets) of a 360dialog or CAMS upstream, as stored."""
    settings: dict[str, Any]
    if upstream == "d360":
        settings = {
            "channels": [{"base_url": c.base_url, "phone_number": c.phone_number} for c in channels]
        }
        return settings, {"api_keys": [c.api_key.get_secret_value() for c in channels]}
    assert cams is not None  # the space's validator
    settings = {
        "endpoint": cams.endpoint,
        "protocol": cams.protocol,
        "access_key_id": cams.access_key_id,
        "cust_space_id": cams.cust_space_id,
        "phone_numbers": list(cams.phone_numbers),
        "templates": [{"code": t.code, "language": t.language} for t in cams.templates],
        "qps": cams.qps,
    }
    return settings, {"access_key_secret": cams.access_key_secret.get_secret_value()}


async def put_space_upstream(
    space_id: str,
    upstream: str,
    channels: Sequence[D360ChannelConfig],
    cams: CamsUpstreamConfig | None,
    repository: SpaceUpstreamRepository,
    secretbox: SecretBox,
) -> None:
    """Store where a space's health comes from (Meta: nothing stored), secrets encrypted."""
    if upstream == "meta":
        await repository.remove(space_id)
        return
    settings, secrets = stored_upstream(upstream, channels, cams)
    await repository.put(space_id, upstream, settings, secretbox.encrypt(json.dumps(secrets)))


async def store_space_upstream(
    space: SpaceConfig, repository: SpaceUpstreamRepository, secretbox: SecretBox
) -> None:
    """Make storage say where the space's health comes from, as the config does."""
    await put_space_upstream(
        space.id, space.upstream, space.d360_channels, space.cams, repository, secretbox
    )


def bsp_space(stored: StoredUpstream, secretbox: SecretBox) -> BspSpace | None:
    """The router's view of a stored BSP space; None when its secrets cannot be opened."""
    try:
        secrets = json.loads(secretbox.decrypt(stored.secrets_encrypted))
    except (SecretBoxError, ValueError):
        log.error(
            "cannot open a BSP upstream's secrets; wrong master key?", space_id=stored.space_id
        )
        return None
    settings = stored.settings
    if stored.kind == "d360":
        channels = tuple(
            D360Channel(api_key=key, base_url=c["base_url"], phone_number=c.get("phone_number"))
            for c, key in zip(settings["channels"], secrets["api_keys"], strict=True)
        )
        return BspSpace(stored.space_id, "d360", channels=channels)
    account = CamsAccount(
        access_key_id=settings["access_key_id"],
        access_key_secret=secrets["access_key_secret"],
        cust_space_id=settings["cust_space_id"],
        endpoint=settings["endpoint"],
        protocol=settings["protocol"],
        phone_numbers=tuple(settings.get("phone_numbers", ())),
        templates=tuple(
            CamsTemplate(t["code"], t["language"]) for t in settings.get("templates", ())
        ),
        qps=int(settings.get("qps", 5)),
    )
    return BspSpace(stored.space_id, "cams", cams=account)


async def start_bsp_upstreams(
    router: BspRouter,
    repository: SpaceUpstreamRepository,
    tenancy: TenancyRepository,
    secretbox: SecretBox,
    catalog: CatalogSource,
) -> None:
    """Configure the router from storage, learn the BSP nodes, place their WABAs in their
    spaces and write their catalog (from what was learned: no further BSP call)."""
    spaces = [s for s in (bsp_space(row, secretbox) for row in await repository.all()) if s]

    async def place(found: dict[str, list[str]]) -> None:
        for space_id, waba_ids in found.items():
            for waba_id in waba_ids:
                await tenancy.upsert_waba(waba_id, space_id)
                await catalog.sync_waba(waba_id)

    router.configure(spaces, placed=place)
    if not spaces:
        return
    await place(await router.discover())
    log.info("BSP upstreams ready", spaces=len(spaces))
