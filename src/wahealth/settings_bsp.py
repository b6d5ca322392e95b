"""A space's upstream when it is not Meta: 360dialog channels or an Alibaba CAMS account.

Kept apart from `settings` so a space's other fields and these evolve independently;
`SpaceConfig` takes `upstream`, `d360_channels` and `cams` from here. Secrets are
`SecretStr`: never in a repr, a log line or an error message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

UpstreamKind = Literal["meta", "d360", "cams"]

D360_BASE_URL = "https://waba-v2.360dialog.io"
CAMS_ENDPOINT = "cams.ap-southeast-1.aliyuncs.com"
# Alibaba's documented limit of GetWhatsappHealthStatus: requests per second per account.
CAMS_QPS = 5


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class D360ChannelConfig(_Section):
    """One 360dialog channel: its `D360-API-KEY` is bound to one phone number."""

    api_key: SecretStr = Field(min_length=1)
    base_url: str = Field(default=D360_BASE_URL, min_length=1)
    # The number as users write it (optional): lets CAMS callers and the gate name it by
    # number. 360dialog's health answer carries only the phone-number id.
    phone_number: str | None = Field(default=None, min_length=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        return value


class CamsTemplateConfig(_Section):
    code: str = Field(min_length=1)
    language: str = Field(min_length=1)


class CamsUpstreamConfig(_Section):
    """An Alibaba CAMS account: an AccessKey, the `CustSpaceId` and what to watch in it."""

    endpoint: str = Field(default=CAMS_ENDPOINT, min_length=1)
    protocol: Literal["https", "http"] = "https"
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr = Field(min_length=1)
    cust_space_id: str = Field(min_length=1)
    phone_numbers: list[str] = Field(default_factory=list)
    templates: list[CamsTemplateConfig] = Field(default_factory=list)
    # Calls per second wahealth allows itself with this AccessKey (Alibaba allows 5).
    qps: int = Field(default=CAMS_QPS, ge=1, le=CAMS_QPS)


def check_space_upstream(
    upstream: UpstreamKind,
    d360_channels: list[D360ChannelConfig],
    cams: CamsUpstreamConfig | None,
) -> None:
    """Refuse a space whose upstream lacks its settings, or carries another's."""
    if upstream == "d360" and not d360_channels:
        raise ValueError('upstream = "d360" needs at least one [[spaces.d360_channels]]')
    if upstream == "cams" and cams is None:
        raise ValueError('upstream = "cams" needs a [spaces.cams] table')
    if upstream != "d360" and d360_channels:
        raise ValueError('d360_channels are only read with upstream = "d360"')
    if upstream != "cams" and cams is not None:
        raise ValueError('a [spaces.cams] table is only read with upstream = "cams"')
