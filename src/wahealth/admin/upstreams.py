"""Where a space takes its health from, set through the admin API: Meta, 360dialog or CAMS.

The body has the configuration file's shape (`upstream`, `d360_channels`, `cams`). The
API keys and the AccessKey secret are write-only: stored encrypted under the master key
(`storage.space_upstreams`), never answered, audited or logged. Nothing is asked of the
BSP here: the router reads the stored upstreams at start, so a change takes effect at the
next start (a space of the configuration file takes the file's upstream again then).
Operators only: an upstream's address is where wahealth sends that space's calls.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from wahealth.admin.service import AdminBase
from wahealth.admin.tokens import Caller
from wahealth.bsp_wiring import put_space_upstream
from wahealth.settings_bsp import (
    CAMS_ENDPOINT,
    CAMS_QPS,
    D360_BASE_URL,
    CamsUpstreamConfig,
    D360ChannelConfig,
)
from wahealth.storage.errors import UnknownSpace

# Printable ASCII without spaces, as ids, keys and secrets are.
PRINTABLE = r"^[!-~]+$"
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
Secret = Annotated[
    str,
    Field(min_length=1, max_length=512, pattern=PRINTABLE, json_schema_extra={"writeOnly": True}),
]
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[!-~]+$")]
TAKES_EFFECT = "at the next start"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class D360ChannelSet(_Request):
    api_key: Secret = Field(description="The channel's D360-API-KEY; never answered.")
    base_url: Url = D360_BASE_URL
    phone_number: Text | None = None


class CamsTemplateSet(_Request):
    code: Text
    language: Text


class CamsSet(_Request):
    endpoint: Text = CAMS_ENDPOINT
    protocol: Literal["https", "http"] = "https"
    access_key_id: Text
    access_key_secret: Secret = Field(description="The AccessKey's secret; never answered.")
    cust_space_id: Text
    phone_numbers: list[Text] = Field(default_factory=list, max_length=1000)
    templates: list[CamsTemplateSet] = Field(default_factory=list, max_length=1000)
    qps: int = Field(default=CAMS_QPS, ge=1, le=CAMS_QPS)


class MetaUpstreamSet(_Request):
    """The space takes its health from Meta (the default)."""

    upstream: Literal["meta"]


class D360UpstreamSet(_Request):
    """The space takes its health from 360dialog, one channel per phone number."""

    upstream: Literal["d360"]
    d360_channels: list[D360ChannelSet] = Field(min_length=1, max_length=100)


class CamsUpstreamSet(_Request):
    """The space takes its health from an Alibaba CAMS account."""

    upstream: Literal["cams"]
    cams: CamsSet


# A space's upstream, as in the configuration file's `[[spaces]]`.
SpaceUpstreamSet = Annotated[
    MetaUpstreamSet | D360UpstreamSet | CamsUpstreamSet, Field(discriminator="upstream")
]
AnyUpstreamSet = MetaUpstreamSet | D360UpstreamSet | CamsUpstreamSet


class D360ChannelShown(BaseModel):
    base_url: str
    phone_number: str | None


class CamsTemplateShown(BaseModel):
    code: str
    language: str


class CamsShown(BaseModel):
    endpoint: str
    protocol: str
    access_key_id: str
    cust_space_id: str
    phone_numbers: list[str]
    templates: list[CamsTemplateShown]
    qps: int


class SpaceUpstream(BaseModel):
    """A space's upstream as stored: never its keys or secrets."""

    space: str
    upstream: Literal["meta", "d360", "cams"]
    d360_channels: list[D360ChannelShown]
    cams: CamsShown | None
    takes_effect: str = Field(description="When the running service uses it.")


def _channels(body: AnyUpstreamSet) -> list[D360ChannelSet]:
    return body.d360_channels if isinstance(body, D360UpstreamSet) else []


def _cams(body: AnyUpstreamSet) -> CamsSet | None:
    return body.cams if isinstance(body, CamsUpstreamSet) else None


class SpaceUpstreams(AdminBase):
    """A space's upstream."""

    async def set(self, caller: Caller, space_id: str, body: AnyUpstreamSet) -> SpaceUpstream:
        self.operator_only(caller, "a space's upstream")
        repository = self.stores.space_upstreams
        assert repository is not None, "space upstreams need their repository"
        account = await self.stores.tenancy.account_of_space(space_id)
        if account is None:
            raise UnknownSpace(space_id)
        channels, cams = _channels(body), _cams(body)
        await put_space_upstream(
            space_id,
            body.upstream,
            [D360ChannelConfig.model_validate(c.model_dump()) for c in channels],
            None if cams is None else CamsUpstreamConfig.model_validate(cams.model_dump()),
            repository,
            self.stores.secretbox,
        )
        await self.changed(
            caller, "space.upstream", f"space:{space_id}", account, upstream=body.upstream,
            d360_channels=len(channels),
        )  # fmt: skip
        return SpaceUpstream(
            space=space_id,
            upstream=body.upstream,
            d360_channels=[
                D360ChannelShown(base_url=c.base_url, phone_number=c.phone_number) for c in channels
            ],
            cams=None
            if cams is None
            else CamsShown(**cams.model_dump(exclude={"access_key_secret"})),
            takes_effect=TAKES_EFFECT,
        )
