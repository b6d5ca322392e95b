"""Scenario files: the built-in demo, TOML/YAML parsing and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wahealth.upstream.emulator import ScenarioError, load_scenario, synthetic_scenario
from wahealth.upstream.emulator.synthetic import (
    synthetic_display_phone_number,
    synthetic_phone_number_id,
    synthetic_waba_id,
)

MINIMAL_TOML = """
tokens = ["t"]
[[businesses]]
id = "1"
[[apps]]
id = "2"
[[wabas]]
id = "3"
business = "1"
app = "2"
[[phone_numbers]]
id = "4"
waba = "3"
display_phone_number = "+1 631-555-5555"
"""

MINIMAL_YAML = """
tokens: [t]
businesses: [{id: "1"}]
apps: [{id: "2"}]
wabas: [{id: "3", business: "1", app: "2"}]
phone_numbers:
  - id: "4"
    waba: "3"
    display_phone_number: "+1 631-555-5555"
    health:
      can_send_message: BLOCKED
      errors: [{error_code: 141010, error_description: Not verified}]
      can_receive_call_sip: AVAILABLE
rate_limit: {calls_per_window: 5, window_seconds: 60}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_demo_scenario_has_the_contract_ids() -> None:
    demo = load_scenario(None)
    assert demo.tokens == ("demo-meta-token",)
    assert [b.id for b in demo.businesses] == ["506914307656634"]
    assert [a.id for a in demo.apps] == ["634974688087057"]
    assert [(w.id, w.health.can_send_message) for w in demo.wabas] == [
        ("102290129340398", "AVAILABLE"),
        ("299399000000001", "BLOCKED"),
    ]
    phones = {
        p.id: (p.waba, p.display_phone_number, p.health.can_send_message)
        for p in demo.phone_numbers
    }
    assert phones == {
        "106540352242922": ("102290129340398", "+86 138 0000 0001", "AVAILABLE"),
        "105154286024403": ("102290129340398", "+86 138 0000 0002", "LIMITED"),
        "106540352242999": ("299399000000001", "+86 138 0000 0009", "AVAILABLE"),
    }
    (template,) = demo.templates
    assert (template.id, template.name, template.language, template.status) == (
        "2632273056924580",
        "order_update",
        "en",
        "PENDING",
    )
    assert template.health.errors[0].error_code == 141002
    assert demo.rate_limit.calls_per_window is None
    assert demo.rate_limit.app_calls_per_window is None


def test_toml_and_yaml_load_with_defaults(tmp_path: Path) -> None:
    toml = load_scenario(write(tmp_path, "s.toml", MINIMAL_TOML))
    assert toml.phone_numbers[0].health.can_send_message == "AVAILABLE"
    assert toml.phone_numbers[0].quality_rating == "GREEN"
    yaml = load_scenario(write(tmp_path, "s.yml", MINIMAL_YAML))
    health = yaml.phone_numbers[0].health
    assert health.can_send_message == "BLOCKED"
    assert health.errors[0].error_code == 141010
    assert health.can_receive_call_sip == "AVAILABLE"
    assert yaml.rate_limit.calls_per_window == 5


def test_numeric_ids_are_read_as_strings(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace('id = "1"', "id = 1").replace('business = "1"', "business = 1")
    loaded = load_scenario(write(tmp_path, "s.toml", text))
    assert loaded.businesses[0].id == "1"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.toml", "tokens = [", "bad TOML"),
        ("bad.yaml", "tokens: [t\nwabas: {", "bad YAML"),
        ("list.yaml", "- a\n- b\n", "must be a table/mapping"),
        ("s.json", "{}", "unknown scenario format '.json'"),
        ("ref.toml", MINIMAL_TOML.replace('waba = "3"', 'waba = "9"'), "unknown waba '9'"),
        (
            "biz.toml",
            MINIMAL_TOML.replace('business = "1"', 'business = "8"'),
            "unknown business '8'",
        ),
        ("dup.toml", MINIMAL_TOML.replace('id = "4"', 'id = "3"'), "duplicate id '3'"),
        (
            "status.toml",
            MINIMAL_TOML + '[phone_numbers.health]\ncan_send_message = "MAYBE"\n',
            "phone_numbers.0.health.can_send_message",
        ),
        ("tokens.toml", MINIMAL_TOML.replace('tokens = ["t"]', "tokens = []"), "tokens"),
        (
            "typo.toml",
            MINIMAL_TOML.replace("display_phone_number", "display_number"),
            "display_number",
        ),
    ],
)
def test_malformed_files_raise_one_line_errors_naming_the_file(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.toml")


def test_synthetic_scenario_spreads_numbers_over_wabas() -> None:
    big = synthetic_scenario(1000, n_templates=30, wabas=3, limited_every=10)
    assert len(big.phone_numbers) == 1000
    assert len(big.templates) == 30
    assert [w.id for w in big.wabas] == [synthetic_waba_id(i) for i in range(3)]
    phone = big.phone_numbers[4]
    assert phone.id == synthetic_phone_number_id(4)
    assert phone.waba == synthetic_waba_id(1)
    assert phone.display_phone_number == synthetic_display_phone_number(4) == "+1 555-000-0004"
    limited = [p.id for p in big.phone_numbers if p.health.can_send_message == "LIMITED"]
    assert len(limited) == 100
    assert len({p.id for p in big.phone_numbers} | {t.id for t in big.templates}) == 1030
