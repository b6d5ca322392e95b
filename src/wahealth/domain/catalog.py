"""Catalog of Meta's messaging-health and send-blocking error codes, in three languages.

The texts live in `locales/<language>.toml` (English, Indonesian, Simplified Chinese),
one file per language with the same keys. How they are served:

- English: the catalog only fills what Meta left out. Meta's own text, when given, is
  never replaced.
- Indonesian and Chinese: for a code the catalog knows, its translation is served in
  place of Meta's English (which stays in the raw report that storage keeps); a code
  it does not know keeps Meta's text. LIMITED reasons Meta sends as plain text are
  translated when they are one the catalog knows word for word (`[info]`).

The catalog fills gaps and never filters: unknown codes pass through as Meta sent them.
Every text is ours to translate; `documented` says whether the English possible
solution is a public source's (True) or written by us because none gives one (False).

Sources:
- 141002: Meta, "Messaging and Calling Health Status"
  (developers.facebook.com/documentation/business-messaging/whatsapp/support/health-status),
  example blocked response; mirrored verbatim in 360dialog's "Messaging Health Status".
- 141006: Alibaba Cloud CAMS GetWhatsappHealthStatus, response example
  (alibabacloud.com/help/en/chatapp/developer-reference/api-cams-2020-06-06-getwhatsapphealthstatus);
  the same code with a longer description is in pywa's test fixtures.
- 141010 (BUSINESS entities) and 138024 (PHONE_NUMBER, calling only): descriptions as
  observed in public client code and tests; solutions ours.
- Other 1410xx codes (141000-141015): no public source we found gives their meaning, so
  they are not catalogued; Meta's text passes through.
- 368, 130429, 130497, 131026, 131031, 131042, 131047, 131048, 131049, 131051, 131056,
  131057, 132000, 132001, 132005, 132007, 132012, 132015, 132016, 133010: Meta,
  "WhatsApp error codes"
  (developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes),
  descriptions as that table gives them (as quoted in pywa's `pywa/errors.py`; 131026
  condensed, 131049 as Meta's `details` text); possible solutions ours, from the
  same page's guidance and Meta's pages on messaging limits and template quality.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any

from wahealth.domain.languages import Language, language_of
from wahealth.domain.model import Entity, HealthError, HealthReport

# Code -> whether a public source gives the possible solution (False: it is ours).
DOCUMENTED: Mapping[str, bool] = {
    "141002": True,
    "141006": True,
    "141010": False,
    "138024": False,
    **{
        code: False
        for code in (
            "368",
            "130429",
            "130497",
            "131026",
            "131031",
            "131042",
            "131047",
            "131048",
            "131049",
            "131051",
            "131056",
            "131057",
            "132000",
            "132001",
            "132005",
            "132007",
            "132012",
            "132015",
            "132016",
            "133010",
        )
    },
}


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One code's texts in one language."""

    code: str
    description: str
    possible_solution: str
    documented: bool = True


@dataclass(frozen=True, slots=True)
class LocaleTexts:
    """Everything one locale file holds."""

    language: Language
    errors: Mapping[str, CatalogEntry]
    info: Mapping[str, str]
    notices: Mapping[str, str]


class LocaleFileError(ValueError):
    """A locale file does not have the shape the catalog expects (a packaging defect)."""


@functools.cache
def texts(language: Language) -> LocaleTexts:
    """The texts of one language, read once from the package's locale file."""
    name = f"{language.value}.toml"
    raw = tomllib.loads((files("wahealth.domain") / "locales" / name).read_text("utf-8"))
    errors = {
        code: CatalogEntry(
            code,
            _text(fields, "description", name),
            _text(fields, "solution", name),
            documented=DOCUMENTED.get(code, False),
        )
        for code, fields in _table(raw, "errors", name).items()
    }
    info = {key: _text(fields, "text", name) for key, fields in _table(raw, "info", name).items()}
    notices = {key: _string(value, name) for key, value in _table(raw, "notices", name).items()}
    return LocaleTexts(language, errors, info, notices)


def _table(raw: Mapping[str, Any], key: str, name: str) -> dict[str, Any]:
    table = raw.get(key, {})
    if not isinstance(table, dict):
        raise LocaleFileError(f"{name}: [{key}] must be a table")
    return table


def _text(fields: Any, key: str, name: str) -> str:
    if not isinstance(fields, dict):
        raise LocaleFileError(f"{name}: every entry must be a table")
    return _string(fields.get(key), name)


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise LocaleFileError(f"{name}: every text must be a non-empty string")
    return value


def _language(lang: Language | str) -> Language:
    return lang if isinstance(lang, Language) else language_of(lang) or Language.EN


@functools.cache
def _info_keys() -> Mapping[str, str]:
    """Meta's English wording of each known LIMITED reason -> its key."""
    return {text: key for key, text in texts(Language.EN).info.items()}


# --- What the dialects and the gate call ----------------------------------------------------


def describe(code: int | str, lang: Language | str = Language.EN) -> tuple[str, str] | None:
    """(description, possible solution) of a code in a language, if the catalog knows it."""
    entry = texts(_language(lang)).errors.get(str(code))
    return None if entry is None else (entry.description, entry.possible_solution)


def describe_error(code: int | str) -> CatalogEntry | None:
    """The English catalog entry for a code, if we know it."""
    return texts(Language.EN).errors.get(str(code))


def fill_error(error: HealthError, lang: Language | str = Language.EN) -> HealthError:
    """The error with the catalog's texts: English fills gaps, other languages translate."""
    language = _language(lang)
    entry = texts(language).errors.get(error.code)
    if entry is None:
        return error
    if language is not Language.EN:
        description, solution = entry.description, entry.possible_solution
    else:
        # Meta's English stays; only what it left out (or left empty) is filled.
        description = error.error_description or entry.description
        solution = error.possible_solution or entry.possible_solution
    if description == error.error_description and solution == error.possible_solution:
        return error
    return replace(error, error_description=description, possible_solution=solution)


def translate_info(text: str, lang: Language | str = Language.EN) -> str:
    """A LIMITED reason in a language: known wording translated, anything else as Meta sent it."""
    language = _language(lang)
    if language is Language.EN:
        return text
    key = _info_keys().get(text)
    return text if key is None else texts(language).info.get(key, text)


def fill_entity(entity: Entity, lang: Language | str = Language.EN) -> Entity:
    """The entity with its errors filled and its LIMITED reasons translated."""
    errors = tuple(fill_error(e, lang) for e in entity.errors)
    info = tuple(translate_info(i, lang) for i in entity.additional_info)
    if _same(errors, entity.errors) and _same(info, entity.additional_info):
        return entity
    return replace(entity, errors=errors, additional_info=info)


def fill(entities: Iterable[Entity], lang: Language | str = Language.EN) -> tuple[Entity, ...]:
    """Every entity filled in a language (see `fill_entity`)."""
    return tuple(fill_entity(e, lang) for e in entities)


def localize(report: HealthReport, lang: Language | str = Language.EN) -> HealthReport:
    """The report as served in a language; the same object when the catalog changes nothing."""
    entities = fill(report.entities, lang)
    if _same(entities, report.entities):
        return report
    return replace(report, entities=entities)


def _same(new: tuple[object, ...], old: tuple[object, ...]) -> bool:
    """Whether nothing was replaced (the fill functions hand back unchanged objects)."""
    return all(a is b for a, b in zip(new, old, strict=True))


def notice(name: str, lang: Language | str = Language.EN, **fields: str) -> str:
    """One of wahealth's own notices (`[notices]`), with its fields filled in."""
    return texts(_language(lang)).notices[name].format(**fields)
