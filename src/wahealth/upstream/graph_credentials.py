"""What a Graph call is made with: an access token, and optionally the app secret.

With an app secret, every call carries `appsecret_proof`: the hex HMAC-SHA256 of the
access token keyed by the app secret, as Meta's "Require App Secret" setting demands
(Meta: Securing Graph API Requests). Neither value is ever shown in a repr or a log.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

APPSECRET_PROOF = "appsecret_proof"


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """hex(HMAC-SHA256(key=app_secret, message=access_token))."""
    key, message = app_secret.encode("utf-8"), access_token.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class GraphCredentials:
    """A token and its optional app secret; `authorization` and `proof` are derived once."""

    access_token: str = field(repr=False)
    app_secret: str | None = field(default=None, repr=False)
    authorization: str = field(init=False, repr=False, compare=False)
    proof: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "authorization", f"Bearer {self.access_token}")
        proof = None if not self.app_secret else appsecret_proof(self.access_token, self.app_secret)
        object.__setattr__(self, "proof", proof)
