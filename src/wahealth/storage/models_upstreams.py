"""Tables of a space's upstream other than the default Meta token: a BSP, a Meta connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from wahealth.storage.models import Base


class SpaceUpstreamRow(Base):
    """A space whose health comes from a BSP (360dialog, Alibaba CAMS) instead of Meta.

    `settings` holds what is not secret (base URLs, endpoint, numbers, templates);
    `secrets_encrypted` the API keys and AccessKey secret, as one encrypted JSON document.
    """

    __tablename__ = "space_upstreams"

    space_id: Mapped[str] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str]
    settings: Mapped[dict[str, Any]]
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class MetaConnectionRow(Base):
    """A named Meta token (and app secret), both encrypted, and whether Meta accepts it.

    `state` is `ok`, `refused` (190 / 200-299 / 10: that connection's refresh pauses) or
    `unchecked`; `problem` is Meta's code and message when refused. `calls_per_minute` is
    the connection's own Meta budget (null: `[monitor] meta_calls_per_minute`).
    """

    __tablename__ = "meta_connections"

    name: Mapped[str] = mapped_column(primary_key=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    app_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str]
    problem: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None]
    changed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    calls_per_minute: Mapped[int | None]
