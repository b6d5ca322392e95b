"""The Meta emulator: an ASGI stand-in for the Graph API, driven by a scenario."""

from wahealth.upstream.emulator.app import create_emulator, emulator_state
from wahealth.upstream.emulator.scenario import (
    HealthErrorSpec,
    HealthSpec,
    RateLimitSpec,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from wahealth.upstream.emulator.state import EmulatorState, Fault, HealthChange, HealthHook
from wahealth.upstream.emulator.synthetic import synthetic_scenario

__all__ = [
    "EmulatorState",
    "Fault",
    "HealthChange",
    "HealthErrorSpec",
    "HealthHook",
    "HealthSpec",
    "RateLimitSpec",
    "Scenario",
    "ScenarioError",
    "create_emulator",
    "emulator_state",
    "load_scenario",
    "parse_scenario",
    "synthetic_scenario",
]
