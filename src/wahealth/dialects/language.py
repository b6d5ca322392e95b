"""The language a request asks its answer in, read once per request from `Accept-Language`."""

from __future__ import annotations

from starlette.types import Scope

from wahealth.domain.languages import ENGLISH, Language, negotiate
from wahealth.httputil import header


def request_language(scope: Scope) -> Language:
    """The served language the request's `Accept-Language` prefers; English without one.

    Every request of every dialect asks this, and most SDKs send no such header: the
    absent case is one pass over the raw headers comparing with a constant, nothing more.
    """
    for name, _ in scope["headers"]:
        if name == b"accept-language":
            return negotiate(header(scope, b"accept-language"))  # repeated ones joined
    return ENGLISH


def credential_and_language(
    scope: Scope, name: bytes, *, required: bool = True
) -> tuple[str, Language] | None:
    """The one header `name` (lower-case) and the answer's language, in a single pass.

    None when either header is repeated, or `name` is `required` and absent (else it
    reads as ""): the hot path then leaves the request to the endpoint, which joins
    repeated headers the general way.
    """
    found: bytes | None = None
    asked: bytes | None = None
    for key, value in scope["headers"]:
        if key == name:
            if found is not None:
                return None
            found = value
        elif key == b"accept-language":
            if asked is not None:
                return None
            asked = value
    if found is None:
        if required:
            return None
        found = b""
    lang = ENGLISH if asked is None else negotiate(asked.decode("latin-1"))
    return found.decode("latin-1"), lang
