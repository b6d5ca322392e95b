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
