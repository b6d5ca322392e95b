"""Errors raised by the use cases; each dialect translates them into its own wire shape."""

from __future__ import annotations

from typing import ClassVar


class CoreError(Exception):
    """Base of the use-case errors."""


class InvalidRequest(CoreError):
    """A parameter is missing or has a bad value."""

    def __init__(self, message: str, *, parameter: str | None = None, missing: bool = False):
        super().__init__(message)
        self.parameter = parameter
        self.missing = missing


class Unauthenticated(CoreError):
    """No credential, or one we do not know or that was revoked."""


class SignatureRejected(Unauthenticated):
    """A signed request failed verification.

    `code`, `http_status` and `message` say why in the signing scheme's own terms (for
    CAMS: Alibaba's codes), so the dialect that speaks that scheme renders them unchanged.
    """

    code: ClassVar[str] = "IncompleteSignature"
    http_status: ClassVar[int] = 400
    message: str = "The request signature is not valid."


class RequestTooLarge(CoreError):
    """The request body is larger than the endpoint accepts."""


class AccessDenied(CoreError):
    """The caller is known but may not see this space or node."""


class NodeNotFound(CoreError):
    """No such phone number, template or WABA (in our catalog or at Meta)."""

    def __init__(self, message: str, *, what: str = "node"):
        super().__init__(message)
        self.what = what


class Throttled(CoreError):
    """The account exceeded its request rate."""

    def __init__(self, retry_after: float):
        super().__init__(f"rate limit exceeded; retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class UpstreamUnavailable(CoreError):
    """Meta failed or rate-limited us and we have no last known report to serve.

    `retry_after` is always set: Meta's own estimate, or our back-off's.
    """

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(CoreError):
    """A backend the gateway cannot answer safely without (rate limiter, nonce store) is down.

    Refusing is the safe side: unlimited requests would spend the Meta budget, and a
    nonce that cannot be claimed cannot rule out a replay.
    """

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after
