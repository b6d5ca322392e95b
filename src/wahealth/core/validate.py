"""Bounds on what a caller may name, checked at the dialect boundary.

Meta ids are digits, at most a few dozen; E.164 numbers have at most 15 digits;
template names and language codes are short. Anything longer is refused before it
reaches a cache key, a log line or a query, so no client-chosen value can grow memory.
A value out of bounds cannot name anything that exists, so each check raises the
same error an unknown one gets (`NodeNotFound`, or `AccessDenied` for a space): the
wire answer stays what clients already handle, and nothing of the value is kept.
"""

from __future__ import annotations

import re

from wahealth.core.errors import AccessDenied, NodeNotFound
from wahealth.domain import normalize_phone_number

MAX_NODE_ID_DIGITS = 32
MAX_E164_DIGITS = 15
# Room for "+", spaces, dashes and brackets around 15 digits.
MAX_PHONE_NUMBER_CHARS = 32
MAX_TEMPLATE_CODE_CHARS = 512
MAX_SPACE_ID_CHARS = 128
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8}){0,2}", re.ASCII)
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


def is_node_id(value: str) -> bool:
    """Whether `value` can be a Meta node id (ASCII digits, bounded)."""
    return 0 < len(value) <= MAX_NODE_ID_DIGITS and value.isascii() and value.isdigit()


def shown(value: str, limit: int = 40) -> str:
    """A caller's value safe to echo in an error: bounded and quoted."""
    return repr(value[:limit] + ("…" if len(value) > limit else ""))


def check_node_id(value: str, what: str = "node") -> str:
    if not is_node_id(value):
        raise NodeNotFound(
            f"{what} {shown(value)} is not a Meta id (at most {MAX_NODE_ID_DIGITS} digits)",
            what=what,
        )
    return value


def check_phone_number(value: str) -> str:
    digits = normalize_phone_number(value) if len(value) <= MAX_PHONE_NUMBER_CHARS else ""
    if not 0 < len(digits) <= MAX_E164_DIGITS:
        raise NodeNotFound(
            f"phone number {shown(value)} is not a phone number (at most {MAX_E164_DIGITS} digits)",
            what="phone",
        )
    return value


def check_template(code: str, language: str) -> tuple[str, str]:
    if (
        len(code) > MAX_TEMPLATE_CODE_CHARS
        or not _PRINTABLE.fullmatch(code)
        or not _LANGUAGE.fullmatch(language)
    ):
        raise NodeNotFound(
            f"template {shown(code)} ({shown(language, 16)}) is not a template name "
            f"(at most {MAX_TEMPLATE_CODE_CHARS} characters) and language code",
            what="template",
        )
    return code, language


def check_space_id(value: str) -> str:
    if len(value) > MAX_SPACE_ID_CHARS or not _PRINTABLE.fullmatch(value):
        raise AccessDenied(f"space {shown(value)} does not belong to the calling account")
    return value
