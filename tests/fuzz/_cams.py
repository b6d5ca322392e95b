"""CAMS RPC requests signed the legacy v1 way (HMAC-SHA1), by the official SDK's own signer.

`Utils.get_rpcsignature` is what `alibabacloud-cams20200606` calls with
`Config(signature_algorithm='v2')`; signing with it (not with our verifier's code)
keeps the fuzz suite honest about what a real client sends.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from alibabacloud_tea_openapi.utils import Utils

from wahealth.testing import DEMO

ACTION = "GetWhatsappHealthStatus"
VERSION = "2020-06-06"


def encode(params: dict[str, str]) -> str:
    """A query string or form body as the SDK encodes it."""
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params.items())


def signed_v1(
    method: str,
    business: dict[str, str],
    *,
    key_id: str = DEMO.access_key_id,
    secret: str = DEMO.access_key_secret,
    now: datetime | None = None,
) -> dict[str, str]:
    """`business` plus the v1 protocol parameters and a valid `Signature` for `method`."""
    moment = now or datetime.now(UTC)
    params = {
        "Action": ACTION,
        "Version": VERSION,
        "Format": "json",
        **business,
        "AccessKeyId": key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    params.pop("Signature", None)
    params["Signature"] = Utils.get_rpcsignature(params, method, secret)
    return params
