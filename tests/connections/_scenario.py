"""Two businesses with their own system user tokens in one emulator scenario, and two spaces.

Acme (business 111) owns WABAs 1001 and 1003 and manages WABA 1002 of its client (business 999) as
a client WABA; its app requires appsecret_proof. Beta (business 222) owns WABA 2001. The
default token belongs to business 999's own token, which sees neither Acme's nor Beta's
WABA: a node fetched with the wrong token is not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wahealth.settings import Settings
from wahealth.testing import demo_settings

ACME_TOKEN = "acme-system-user-token"
BETA_TOKEN = "beta-system-user-token"
OTHER_TOKEN = "client-co-token"
ACME_SECRET = "acme-app-secret"
ACME_GRAPH = "acme-graph-key"
BETA_GRAPH = "beta-graph-key"
ACME_PHONE, ACME_CLIENT_PHONE, BETA_PHONE = "10011", "10021", "20011"
ACME_WABA, ACME_CLIENT_WABA, BETA_WABA = "1001", "1002", "2001"
ACME_SECOND_WABA = "1003"

SCENARIO = f"""
[[access_tokens]]
token = "{ACME_TOKEN}"
business = "111"
app = "801"

[[access_tokens]]
token = "{BETA_TOKEN}"
business = "222"
app = "802"

[[access_tokens]]
token = "{OTHER_TOKEN}"
business = "999"

[[businesses]]
id = "111"
name = "Acme"

[[businesses]]
id = "222"
name = "Beta"

[[businesses]]
id = "999"
name = "Client Co"

[[apps]]
id = "801"
secret = "{ACME_SECRET}"
require_appsecret_proof = true

[[apps]]
id = "802"

[[wabas]]
id = "{ACME_WABA}"
business = "111"
app = "801"
name = "Acme main"

[[wabas]]
id = "{ACME_SECOND_WABA}"
business = "111"
app = "801"
name = "Acme second"

[[wabas]]
id = "{ACME_CLIENT_WABA}"
business = "999"
app = "801"
name = "Acme's client"
shared_with = ["111"]

[[wabas]]
id = "{BETA_WABA}"
business = "222"
app = "802"
name = "Beta main"

[[phone_numbers]]
id = "{ACME_PHONE}"
waba = "{ACME_WABA}"
display_phone_number = "+86 139 0000 0011"

[[phone_numbers]]
id = "{ACME_CLIENT_PHONE}"
waba = "{ACME_CLIENT_WABA}"
display_phone_number = "+86 139 0000 0021"

[[phone_numbers]]
id = "{BETA_PHONE}"
waba = "{BETA_WABA}"
display_phone_number = "+86 139 0000 0031"

[phone_numbers.health]
can_send_message = "LIMITED"
additional_info = ["Beta's display name is not approved."]
"""


def write_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "two-businesses.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def two_business_settings(
    tmp_path: Path, *, acme_secret: str | None = ACME_SECRET, **sections: Any
) -> Settings:
    """Two accounts and spaces, each on its own connection; monitor loops off."""
    acme: dict[str, Any] = {"name": "acme", "access_token": ACME_TOKEN}
    if acme_secret is not None:
        acme["app_secret"] = acme_secret
    data: dict[str, Any] = {
        "upstream": {
            "kind": "emulator",
            "scenario": str(write_scenario(tmp_path)),
            "access_token": OTHER_TOKEN,
        },
        "meta_connections": [acme, {"name": "beta", "access_token": BETA_TOKEN}],
        "accounts": [
            {"name": "acme", "graph_tokens": [{"token": ACME_GRAPH}]},
            {"name": "beta", "graph_tokens": [{"token": BETA_GRAPH}]},
        ],
        "spaces": [
            {"id": "acme-space", "account": "acme", "connection": "acme", "wabas": [ACME_WABA]},
            {"id": "beta-space", "account": "beta", "connection": "beta", "wabas": [BETA_WABA]},
        ],
    }
    data.update(sections)
    base = demo_settings(tmp_path)
    return base.model_validate({**base.model_dump(exclude={"spaces", "accounts"}), **data})
