"""Node resolution helpers: how phone numbers are written on each side."""

from __future__ import annotations


def normalize_phone_number(value: str) -> str:
    """Digits only: Meta's `+1 631-555-5555` and CAMS's `16315555555` compare equal."""
    return "".join(ch for ch in value if ch.isdigit())
