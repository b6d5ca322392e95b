"""Why a signed Alibaba Cloud request was refused, in Alibaba's own codes.

Each error carries the gateway code, HTTP status and message an Alibaba Cloud
SDK expects, so the CAMS dialect can render it unchanged and the official SDK
raises the same `ClientException` it would against Alibaba. A `detail` may be
appended to the message to help a client debug its signer; it never contains
a secret or a signature we computed.
"""

from __future__ import annotations

from typing import ClassVar

from wahealth.core.errors import SignatureRejected


class CamsAuthError(SignatureRejected):
    """A request failed Alibaba Cloud authentication."""

    code: ClassVar[str] = "IncompleteSignature"
    http_status: ClassVar[int] = 400
    base_message: ClassVar[str] = "The request signature does not conform to Aliyun standards."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        self.message = f"{self.base_message} {detail}" if detail else self.base_message
        Exception.__init__(self, f"{self.code}: {self.message}")


class IncompleteSignature(CamsAuthError):
    """A signature piece is missing or malformed (also used for unparsable requests)."""


class SignatureDoesNotMatch(CamsAuthError):
    """The signature (or the payload hash) differs from ours."""

    code = "SignatureDoesNotMatch"
    base_message = "Specified signature is not matched with our calculation."


class InvalidAccessKeyIdNotFound(CamsAuthError):
    """No such AccessKey id."""

    code = "InvalidAccessKeyId.NotFound"
    http_status = 404
    base_message = "Specified access key is not found."


class InvalidAccessKeyIdInactive(CamsAuthError):
    """The AccessKey exists but is disabled; raised by the secret lookup."""

    code = "InvalidAccessKeyId.Inactive"
    base_message = "Specified access key is disabled."


class SignatureNonceUsed(CamsAuthError):
    """The nonce was already used by a verified request: a replay."""

    code = "SignatureNonceUsed"
    base_message = "Specified signature nonce was used already."


class InvalidTimeStampExpired(CamsAuthError):
    """The signed date is outside the accepted window around our clock."""

    code = "InvalidTimeStamp.Expired"
    base_message = "Specified time stamp or date value is expired."


class InvalidTimeStampFormat(CamsAuthError):
    """The signed date is not `YYYY-MM-DDThh:mm:ssZ`."""

    code = "InvalidTimeStamp.Format"
    base_message = "Specified time stamp or date value is not well formatted."
