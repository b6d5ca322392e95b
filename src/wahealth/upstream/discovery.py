"""What a Meta token is and what it can see: its check, its WABAs, the app's subscriptions.

- `check_token`: `GET /debug_token?input_token=<token>` with the token itself (a system
  user token may inspect itself): valid, not expired, and granted
  `whatsapp_business_management`. A token Meta refuses raises `GraphAuthError`; one
  that is invalid or lacks the scope raises it too (code 190 or 10), so every caller
  treats token trouble one way.
- `discover_wabas`: `/me/businesses`, then each business's
  `owned_whatsapp_business_accounts` and `client_whatsapp_business_accounts`, every page.
- `subscribe_app`: `POST /<waba>/subscribed_apps` (the app of the token gets the WABA's
  webhooks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wahealth.upstream.errors import GraphAuthError, GraphBadResponse
from wahealth.upstream.graph import GraphClient

REQUIRED_SCOPE = "whatsapp_business_management"
WABA_EDGES = ("owned_whatsapp_business_accounts", "client_whatsapp_business_accounts")


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What `/debug_token` says of a token that works."""

    app_id: str | None
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int | None  # unix seconds; None or 0: never


@dataclass(frozen=True, slots=True)
class DiscoveredWaba:
    id: str
    name: str | None
    business_id: str
    relation: str  # "owned" or "client"


@dataclass
class Discovery:
    businesses: list[tuple[str, str | None]] = field(default_factory=list)
    wabas: list[DiscoveredWaba] = field(default_factory=list)


async def check_token(client: GraphClient, access_token: str) -> TokenCheck:
    """Check the token the client calls with (see the module doc)."""
    answer = await client.get("debug_token", {"input_token": access_token})
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise GraphBadResponse("debug_token: an answer without data")
    if data.get("is_valid") is not True:
        found = data.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        message = str(error.get("message") or "The access token is not valid")
        raise GraphAuthError(message, code=190, subcode=_int(error.get("subcode")))
    scopes = tuple(str(s) for s in data.get("scopes") or () if isinstance(s, str))
    if REQUIRED_SCOPE not in scopes:
        raise GraphAuthError(
            f"(#10) The token lacks the {REQUIRED_SCOPE} permission", code=10, http_status=403
        )
    expires = _int(data.get("expires_at"))
    return TokenCheck(_str(data.get("app_id")), _str(data.get("user_id")), scopes, expires or None)


async def discover_wabas(
    client: GraphClient, *, progress: Callable[[str], None] | None = None
) -> Discovery:
    """Every WABA the token can see through its businesses, each once (owned first)."""
    found = Discovery()
    seen: set[str] = set()
    for business in await client.paged("me/businesses", {"fields": "id,name"}):
        business_id = _str(business.get("id"))
        if business_id is None:
            continue
        found.businesses.append((business_id, _str(business.get("name"))))
        for edge in WABA_EDGES:
            if progress is not None:
                progress(f"{business_id}/{edge}")
            for waba in await client.paged(f"{business_id}/{edge}", {"fields": "id,name"}):
                waba_id = _str(waba.get("id"))
                if waba_id is None or waba_id in seen:
                    continue
                seen.add(waba_id)
                relation = "owned" if edge.startswith("owned") else "client"
                found.wabas.append(
                    DiscoveredWaba(waba_id, _str(waba.get("name")), business_id, relation)
                )
    return found


async def subscribe_app(client: GraphClient, waba_id: str) -> bool:
    """Subscribe the token's app to the WABA's webhooks; Meta's `success`."""
    answer: Any = await client.post(f"{waba_id}/subscribed_apps")
    return isinstance(answer, dict) and answer.get("success") is True


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int) else None
