"""Column types shared by the models: UTC timestamps and JSON documents.

SQLite has no timezone-aware timestamp, so times are stored there as naive UTC
text and given back their UTC zone on the way out; PostgreSQL keeps
`timestamptz`. Either way callers only ever see aware UTC datetimes, and a
naive datetime is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# JSONB on PostgreSQL: comparable and compact; plain JSON (text) elsewhere.
JSONDocument: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


# Distinct times a SQLite column type remembers the text of (see `UTCDateTime`).
_SQLITE_TEXT_MEMO = 256


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    On SQLite each value becomes text; a bulk write carries a few distinct times many
    times over (a page's fetch time, a sync's time), so the text of the last few is kept
    and a repeated time costs a dict lookup rather than a conversion and a format.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        convert = super().bind_processor(dialect)
        if dialect.name != "sqlite" or convert is None:
            return convert
        texts: dict[datetime, Any] = {}

        def process(value: datetime | None) -> Any:
            if value is None:
                return None
            text = texts.get(value)
            if text is None:
                text = convert(value)
                if len(texts) >= _SQLITE_TEXT_MEMO:
                    texts.clear()
                texts[value] = text
            return text

        return process

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)
