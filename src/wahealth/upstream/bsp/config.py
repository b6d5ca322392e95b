"""What a BSP upstream needs to be called: a space's 360dialog channels or CAMS account.

Secrets are excluded from every repr, so no log line or error message carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class D360Channel:
    """One 360dialog channel: its API key is bound to one phone number."""

    api_key: str = field(repr=False)
    base_url: str = "https://waba-v2.360dialog.io"
    phone_number: str | None = None  # as users write it, when configured


@dataclass(frozen=True, slots=True)
class CamsTemplate:
    code: str
    language: str


@dataclass(frozen=True, slots=True)
class CamsAccount:
    """An Alibaba CAMS AccessKey, the `CustSpaceId` to ask in, and what to watch there."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    cust_space_id: str
    endpoint: str = "cams.ap-southeast-1.aliyuncs.com"
    protocol: str = "https"
    phone_numbers: tuple[str, ...] = ()
    templates: tuple[CamsTemplate, ...] = ()
    qps: int = 5


@dataclass(frozen=True, slots=True)
class BspSpace:
    """A space whose health comes from a BSP: `kind` "d360" (channels) or "cams" (account)."""

    space_id: str
    kind: str
    channels: tuple[D360Channel, ...] = ()
    cams: CamsAccount | None = None
