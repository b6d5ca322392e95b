"""Catalog of Meta's messaging-health error codes.

Few codes are public. Texts are as documented by the sources below; where a
source gives no possible solution we say so plainly in our own words and mark
the entry `documented=False`.

Sources:
- 141002: Meta, "Messaging Health Status" (example blocked response), mirrored
  verbatim in 360dialog's "Messaging Health Status" page.
- 141006: Alibaba Cloud CAMS GetWhatsappHealthStatus response example; the same
  code with a longer description appears in pywa's test fixtures.
- 141010: observed on BUSINESS entities in public client code and tests.
- 138024: observed on PHONE_NUMBER entities (calling, not messaging).

The catalog fills gaps and never filters: unknown codes pass through exactly
as Meta sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from wahealth.domain.model import HealthError


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    code: str
    description: str
    possible_solution: str
    documented: bool = True


_ENTRIES = (
    CatalogEntry(
        "141002",
        "Message templates can only be sent out if they are approved.",
        "Edit or appeal the message template review decision.",
    ),
    CatalogEntry(
        "141006",
        "There is an error with the payment method.",
        "There was an error with your payment method. "
        "Please add a new payment method to the account.",
    ),
    CatalogEntry(
        "141010",
        "The Business has not passed business verification.",
        "Complete business verification for the business portfolio in Meta Business Manager.",
        documented=False,
    ),
    CatalogEntry(
        "138024",
        "SIP is not enabled",
        "Enable SIP calling for the phone number if you need calls; messaging is not affected.",
        documented=False,
    ),
)

CATALOG: dict[str, CatalogEntry] = {entry.code: entry for entry in _ENTRIES}


def describe_error(code: int | str) -> CatalogEntry | None:
    """The catalog entry for a code, if we know it."""
    return CATALOG.get(str(code))


def fill_error(error: HealthError) -> HealthError:
    """Fill a missing description or solution from the catalog; never overwrite Meta's text."""
    entry = describe_error(error.error_code)
    if entry is None:
        return error
    return replace(
        error,
        error_description=error.error_description or entry.description,
        possible_solution=error.possible_solution or entry.possible_solution,
    )
