"""Big generated scenarios for fleet-refresh tests and benchmarks.

Ids are deterministic so a test can compute which node it expects where:
WABA i (0-based) is `91` + i padded to 13 digits, phone number j is `92` + j,
template k is `93` + k; numbers and templates go to WABAs round-robin.
"""

from __future__ import annotations

from wahealth.upstream.emulator.scenario import (
    AppSpec,
    BusinessSpec,
    HealthSpec,
    PhoneNumberSpec,
    RateLimitSpec,
    Scenario,
    TemplateSpec,
    WabaSpec,
)

DEMO_TOKEN = "demo-meta-token"  # noqa: S105  (a public demo value, not a secret)
SYNTHETIC_BUSINESS_ID = "900000000000001"
SYNTHETIC_APP_ID = "900000000000002"
LIMITED_INFO = (
    "Your display name has not been approved yet. "
    "Your message limit will increase after the display name is approved."
)


def synthetic_waba_id(index: int) -> str:
    return f"91{index:013d}"


def synthetic_phone_number_id(index: int) -> str:
    return f"92{index:013d}"


def synthetic_template_id(index: int) -> str:
    return f"93{index:013d}"


def synthetic_display_phone_number(index: int) -> str:
    """Formatted like Meta formats US numbers: `+1 555-000-0042` for index 42."""
    digits = f"{index:07d}"
    return f"+1 555-{digits[:3]}-{digits[3:]}"


def synthetic_scenario(
    n_phone_numbers: int,
    n_templates: int = 0,
    wabas: int = 1,
    *,
    token: str = DEMO_TOKEN,
    limited_every: int = 0,
    rate_limit: RateLimitSpec | None = None,
) -> Scenario:
    """A scenario with one business and app, `wabas` WABAs and the given numbers and templates.

    Everything is AVAILABLE, except every `limited_every`-th phone number (1-based), which
    is LIMITED with Meta's display-name text, when `limited_every` > 0.
    """
    if n_phone_numbers < 0 or n_templates < 0 or wabas < 1:
        raise ValueError("need n_phone_numbers >= 0, n_templates >= 0 and wabas >= 1")
    limited = HealthSpec(can_send_message="LIMITED", additional_info=(LIMITED_INFO,))
    available = HealthSpec()
    waba_ids = [synthetic_waba_id(i) for i in range(wabas)]
    phones = tuple(
        PhoneNumberSpec(
            id=synthetic_phone_number_id(j),
            waba=waba_ids[j % wabas],
            display_phone_number=synthetic_display_phone_number(j),
            verified_name=f"Synthetic {j}",
            health=limited if limited_every > 0 and (j + 1) % limited_every == 0 else available,
        )
        for j in range(n_phone_numbers)
    )
    templates = tuple(
        TemplateSpec(
            id=synthetic_template_id(k),
            waba=waba_ids[k % wabas],
            name=f"template_{k:06d}",
            language="en",
        )
        for k in range(n_templates)
    )
    return Scenario(
        tokens=(token,),
        businesses=(BusinessSpec(id=SYNTHETIC_BUSINESS_ID, name="Synthetic Business"),),
        apps=(AppSpec(id=SYNTHETIC_APP_ID, name="Synthetic App"),),
        wabas=tuple(
            WabaSpec(
                id=waba_id,
                business=SYNTHETIC_BUSINESS_ID,
                app=SYNTHETIC_APP_ID,
                name=f"Synthetic WABA {i}",
            )
            for i, waba_id in enumerate(waba_ids)
        ),
        phone_numbers=phones,
        templates=templates,
        rate_limit=rate_limit or RateLimitSpec(),
    )
