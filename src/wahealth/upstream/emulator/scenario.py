"""Scenarios: the businesses, apps, WABAs, numbers and templates the emulator serves.

A scenario is a TOML or YAML file (chosen by suffix) validated with pydantic.
Ids are unique across every kind of node, as Graph ids are, and every
reference must resolve, so a typo fails at load time with the file named
rather than as a puzzling 400 at query time.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HealthValue = Literal["AVAILABLE", "LIMITED", "BLOCKED"]
TemplateStatus = Literal[
    "APPROVED",
    "IN_APPEAL",
    "PENDING",
    "REJECTED",
    "PENDING_DELETION",
    "DELETED",
    "DISABLED",
    "PAUSED",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
    "LOCKED",
]
TemplateCategory = Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
QualityRating = Literal["GREEN", "YELLOW", "RED", "NA", "UNKNOWN"]
QualityScore = Literal["GREEN", "YELLOW", "RED", "UNKNOWN"]
# `messaging_limit_tier` (up to Graph v23.0) and `whatsapp_business_manager_messaging_limit`
# (v24.0 on, the business portfolio's limit; TIER_2K where the older scheme said TIER_1K).
MessagingLimit = Literal[
    "TIER_50",
    "TIER_250",
    "TIER_1K",
    "TIER_2K",
    "TIER_10K",
    "TIER_100K",
    "TIER_UNLIMITED",
    "TIER_NOT_SET",
]
ThroughputLevel = Literal["STANDARD", "HIGH", "NOT_APPLICABLE"]
PhoneStatus = Literal[
    "PENDING",
    "DELETED",
    "MIGRATED",
    "BANNED",
    "RESTRICTED",
    "RATE_LIMITED",
    "FLAGGED",
    "CONNECTED",
    "DISCONNECTED",
    "UNKNOWN",
    "UNVERIFIED",
]
NameStatus = Literal[
    "APPROVED", "AVAILABLE_WITHOUT_REVIEW", "DECLINED", "EXPIRED", "PENDING_REVIEW", "NONE"
]
CodeVerificationStatus = Literal["VERIFIED", "NOT_VERIFIED", "EXPIRED"]
RejectedReason = Literal[
    "NONE",
    "ABUSIVE_CONTENT",
    "CATEGORY_NOT_AVAILABLE",
    "INCORRECT_CATEGORY",
    "INVALID_FORMAT",
    "PROMOTIONAL",
    "SCAM",
    "TAG_CONTENT_MISMATCH",
]
# Fields Meta sends as objects, written either way in a scenario or an admin PATCH.
_MEMBERS = {"throughput": "level", "quality_score": "score"}

DEMO_SCENARIO_RESOURCE = "demo.toml"


class ScenarioError(Exception):
    """A scenario file cannot be used; the message is one line naming the file and the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class HealthErrorSpec(_Model):
    """One entry of an entity's `errors`; `error_code` is kept as written (Meta sends ints)."""

    error_code: int | str
    error_description: str | None = None
    possible_solution: str | None = None


class HealthSpec(_Model):
    """An entity's own health, as Meta reports it per entity."""

    can_send_message: HealthValue = "AVAILABLE"
    errors: tuple[HealthErrorSpec, ...] = ()
    additional_info: tuple[str, ...] = ()
    can_receive_call_sip: str | None = None


class BusinessSpec(_Model):
    id: str = Field(min_length=1)
    name: str | None = None
    health: HealthSpec = HealthSpec()


class AppSpec(_Model):
    id: str = Field(min_length=1)
    name: str | None = None
    health: HealthSpec = HealthSpec()
    # With `require_appsecret_proof`, every call with a token of this app must carry
    # appsecret_proof = hex(HMAC-SHA256(key=secret, message=token)), as Meta's
    # "Require App Secret" setting demands.
    secret: str | None = Field(default=None, min_length=1)
    require_appsecret_proof: bool = False


class AccessTokenSpec(_Model):
    """A token of one business (a system user's): it sees only that business's nodes.

    `app` is the app it was issued for (appsecret_proof, subscribed_apps); `scopes` what
    `/debug_token` reports it was granted.
    """

    token: str = Field(min_length=1)
    business: str
    app: str | None = None
    scopes: tuple[str, ...] = ("whatsapp_business_management", "whatsapp_business_messaging")


class WabaSpec(_Model):
    id: str = Field(min_length=1)
    business: str
    app: str
    name: str | None = None
    health: HealthSpec = HealthSpec()
    # Businesses (a BSP's, say) that manage this WABA as a client WABA: their tokens see it.
    shared_with: tuple[str, ...] = ()


def _member(name: str, value: Any) -> Any:
    """`{"level": "HIGH"}` -> `HIGH` for the fields Meta sends as objects."""
    member = _MEMBERS.get(name)
    if member is not None and isinstance(value, Mapping) and set(value) <= {member, "date"}:
        return value.get(member)
    return value


class PhoneNumberFields(_Model):
    """A phone number's fields besides its id, WABA and health, named as Meta names them."""

    display_phone_number: str
    verified_name: str = ""
    quality_rating: QualityRating = "GREEN"
    messaging_limit_tier: MessagingLimit = "TIER_1K"
    whatsapp_business_manager_messaging_limit: MessagingLimit = "TIER_2K"
    throughput: ThroughputLevel = "STANDARD"
    status: PhoneStatus = "CONNECTED"
    name_status: NameStatus = "APPROVED"
    code_verification_status: CodeVerificationStatus = "VERIFIED"

    @field_validator("throughput", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return _member("throughput", value)


class PhoneNumberSpec(PhoneNumberFields):
    id: str = Field(min_length=1)
    waba: str
    health: HealthSpec = HealthSpec()


class TemplateFields(_Model):
    """A template's fields that change (status, quality, category), named as Meta names them."""

    status: TemplateStatus = "APPROVED"
    category: TemplateCategory = "UTILITY"
    quality_score: QualityScore = "UNKNOWN"
    rejected_reason: RejectedReason = "NONE"

    @field_validator("quality_score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        return _member("quality_score", value)


class TemplateSpec(TemplateFields):
    id: str = Field(min_length=1)
    waba: str
    name: str
    language: str
    health: HealthSpec = HealthSpec()


class RateLimitSpec(_Model):
    """Call budgets per fixed window; `None` means unlimited (the default).

    `calls_per_window` applies to each WABA (calls on the WABA, its numbers and
    templates; exceeding it answers code 80007); `app_calls_per_window` to all
    calls together (code 4).
    """

    calls_per_window: int | None = Field(default=None, ge=1)
    app_calls_per_window: int | None = Field(default=None, ge=1)
    window_seconds: float = Field(default=3600.0, gt=0)


class Scenario(_Model):
    """Everything the emulator knows. Ids are unique across all kinds of node."""

    # Tokens that see every node; `access_tokens` see one business's each.
    tokens: tuple[str, ...] = ()
    access_tokens: tuple[AccessTokenSpec, ...] = ()
    businesses: tuple[BusinessSpec, ...] = ()
    apps: tuple[AppSpec, ...] = ()
    wabas: tuple[WabaSpec, ...] = ()
    phone_numbers: tuple[PhoneNumberSpec, ...] = ()
    templates: tuple[TemplateSpec, ...] = ()
    rate_limit: RateLimitSpec = RateLimitSpec()

    @property
    def every_token(self) -> tuple[str, ...]:
        """Every token the scenario accepts: the all-seeing ones first."""
        return (*self.tokens, *(spec.token for spec in self.access_tokens))

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        seen: set[str] = set()
        groups: tuple[tuple[str, tuple[Any, ...]], ...] = (
            ("business", self.businesses),
            ("app", self.apps),
            ("waba", self.wabas),
            ("phone number", self.phone_numbers),
            ("template", self.templates),
        )
        for kind, specs in groups:
            for spec in specs:
                if spec.id in seen:
                    raise ValueError(f"duplicate id {spec.id!r} ({kind})")
                seen.add(spec.id)
        businesses = {b.id for b in self.businesses}
        apps = {a.id for a in self.apps}
        wabas = {w.id for w in self.wabas}
        if not self.tokens and not self.access_tokens:
            raise ValueError("a scenario needs at least one token (tokens or access_tokens)")
        for spec in self.access_tokens:
            if spec.business not in businesses:
                raise ValueError(f"access token refers to unknown business {spec.business!r}")
            if spec.app is not None and spec.app not in apps:
                raise ValueError(f"access token refers to unknown app {spec.app!r}")
        for app in self.apps:
            if app.require_appsecret_proof and app.secret is None:
                raise ValueError(f"app {app.id} requires appsecret_proof but has no secret")
        for waba in self.wabas:
            if waba.business not in businesses:
                raise ValueError(f"waba {waba.id} refers to unknown business {waba.business!r}")
            if waba.app not in apps:
                raise ValueError(f"waba {waba.id} refers to unknown app {waba.app!r}")
        for phone in self.phone_numbers:
            if phone.waba not in wabas:
                raise ValueError(f"phone number {phone.id} refers to unknown waba {phone.waba!r}")
        for template in self.templates:
            if template.waba not in wabas:
                raise ValueError(f"template {template.id} refers to unknown waba {template.waba!r}")
        return self


def _one_line(error: ValidationError, shown: int = 3) -> str:
    problems = []
    for problem in error.errors()[:shown]:
        where = ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    text = "; ".join(problems)
    if error.error_count() > shown:
        text += f" (and {error.error_count() - shown} more problem(s))"
    return text


def parse_scenario(raw: Mapping[str, Any], *, source: str = "scenario") -> Scenario:
    """Validate already-decoded scenario data; errors name `source`."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_one_line(exc)}") from None


def _decode(text: str, suffix: str, source: str) -> Any:
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{source}: bad TOML: {exc}") from None
    if suffix in {".yaml", ".yml"}:
        try:
            # libyaml's loader when built in: a 100,000-number scenario loads in seconds.
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise ScenarioError(f"{source}: bad YAML: {detail}") from None
    raise ScenarioError(f"{source}: unknown scenario format {suffix!r} (use .toml, .yaml or .yml)")


def load_scenario(path: Path | None = None) -> Scenario:
    """Load a scenario file, or the built-in demo scenario when `path` is None."""
    if path is None:
        text = resources.files(__package__).joinpath(DEMO_SCENARIO_RESOURCE).read_text("utf-8")
        return parse_scenario(tomllib.loads(text), source="built-in demo scenario")
    source = str(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(f"{source}: cannot read scenario: {reason}") from None
    raw = _decode(text, path.suffix.lower(), source)
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: a scenario must be a table/mapping at the top level")
    return parse_scenario(raw, source=source)
