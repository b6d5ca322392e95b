"""Templates, the filters they use, and the headers every dashboard page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from starlette.responses import HTMLResponse

from wahealth.domain.languages import Language

# Every asset is our own: no inline script or style, no third party, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

LANGUAGE_NAMES = {Language.EN: "English", Language.ID: "Bahasa Indonesia", Language.ZH: "中文"}
KIND_NAMES = {"PHONE_NUMBER": "phone number", "MESSAGE_TEMPLATE": "template", "WABA": "WABA"}


def when(moment: datetime | None) -> str:
    """A moment as people read it: `2024-05-01 12:00:07 UTC`."""
    if moment is None:
        return "never"
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, roughly: `45 s`, `12 min`, `3 h`, `6 d`; `never` for no moment."""
    if moment is None:
        return "never"
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - aware).total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def percent(share: float | None) -> str:
    """A share as a percentage with two decimals (never rounded up to 100)."""
    if share is None:
        return "—"
    if share < 1.0:
        return f"{min(share * 100, 99.99):.2f} %"
    return "100 %"


def target(url: str) -> str:
    """Where a webhook goes, without what may be secret in it (path tail, query, user info)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    shown = f"{parts.scheme}://{host}/" + (segments[0] if segments else "")
    if len(segments) > 1 or parts.query:
        shown += "/…" if segments else "…"
    return shown


def status_class(status: str | None) -> str:
    return (
        (status or "UNKNOWN").lower()
        if status in ("AVAILABLE", "LIMITED", "BLOCKED")
        else "unknown"
    )


def query(params: dict[str, Any], **changes: Any) -> str:
    """The page's query string with some parameters changed (None drops one)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wahealth.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when, age=age, percent=percent, target=target, status_class=status_class
    )
    env.globals.update(query=query, kind_name=lambda kind: KIND_NAMES.get(kind, kind))
    return env


class Pages:
    """Renders a template into an HTML response with the dashboard's headers."""

    def __init__(self) -> None:
        self._env = environment()

    def render(
        self,
        name: str,
        context: dict[str, Any],
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        body = self._env.get_template(name).render(**context)
        return HTMLResponse(
            body, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
        )
