"""The language a request asks its answer in, read once per request from `Accept-Language`."""

from __future__ import annotations

from starlette.types import Scope

from wahealth.domain.languages import Language, negotiate

_ACCEPT_LANGUAGE = b"accept-language"


def request_language(scope: Scope) -> Language:
    """The served language the request's `Accept-Language` prefers; English without one.

    One pass over the raw headers with nothing allocated when the header is absent (as
    it is from most SDKs), since every request of every dialect asks this.
    """
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == _ACCEPT_LANGUAGE:
            found = value if found is None else found + b"," + value
    return Language.EN if found is None else negotiate(found.decode("latin-1"))
