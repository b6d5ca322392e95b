"""Node resolution helpers: how phone numbers are written on each side."""

from __future__ import annotations

import re

_NOT_DIGITS = re.compile(r"[^0-9]+")


def normalize_phone_number(value: str) -> str:
    """ASCII digits only: Meta's `+1 631-555-5555` and CAMS's `16315555555` compare equal."""
    return _NOT_DIGITS.sub("", value)
