"""The error catalog in three languages: complete, translated, and never altering Meta's English."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from importlib.resources import files

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.gateway._wire import LIMITED_INFO, PAYMENT_ERROR, TEMPLATE_ERROR

from wahealth.domain import Entity, HealthError, HealthReport
from wahealth.domain.catalog import (
    DOCUMENTED,
    describe,
    describe_error,
    fill,
    fill_entity,
    fill_error,
    localize,
    notice,
    texts,
    translate_info,
)
from wahealth.domain.languages import Language

LANGUAGES = list(Language)
CJK = re.compile(r"[\u4e00-\u9fff]")
SEND_BLOCKING = {"131026", "131047", "131048", "131049", "131051", "131056", "133010", "130429"}
TEMPLATE_CODES = {"132000", "132001", "132005", "132007", "132012", "132015", "132016"}


def _described(code: int | str, language: Language | str = Language.EN) -> tuple[str, str]:
    found = describe(code, language)
    assert found is not None, code
    return found


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalog_code_has_a_description_and_a_solution_in_each_language(
    language: Language,
) -> None:
    errors = texts(language).errors
    assert set(errors) == set(DOCUMENTED)
    for code, entry in errors.items():
        assert entry.description.strip(), code
        assert entry.possible_solution.strip(), code


@pytest.mark.parametrize("language", [Language.ID, Language.ZH])
def test_each_language_has_every_reason_and_notice_with_the_same_fields(
    language: Language,
) -> None:
    english, other = texts(Language.EN), texts(language)
    assert set(other.info) == set(english.info)
    assert set(other.notices) == set(english.notices)
    for name, text in english.notices.items():
        assert _fields(other.notices[name]) == _fields(text), name


@pytest.mark.parametrize("language", [Language.ID, Language.ZH])
def test_translations_are_not_the_english_text(language: Language) -> None:
    english, other = texts(Language.EN), texts(language)
    for code, entry in other.errors.items():
        assert entry.description != english.errors[code].description, code
        assert entry.possible_solution != english.errors[code].possible_solution, code
    for key, text in other.info.items():
        assert text != english.info[key], key


def test_chinese_texts_are_in_chinese() -> None:
    zh = texts(Language.ZH)
    for code, entry in zh.errors.items():
        assert CJK.search(entry.description), code
        assert CJK.search(entry.possible_solution), code
    assert all(CJK.search(text) for text in zh.info.values())


def test_the_catalog_covers_the_health_and_send_blocking_codes() -> None:
    assert {"141002", "141006", "141010", "138024"} <= set(DOCUMENTED)
    assert SEND_BLOCKING | TEMPLATE_CODES | {"131031", "368"} <= set(DOCUMENTED)
    # Only Meta's health codes with a published solution are marked documented.
    assert {code for code, documented in DOCUMENTED.items() if documented} == {"141002", "141006"}


def test_documented_entries_are_the_sources_words() -> None:
    for wire in (TEMPLATE_ERROR, PAYMENT_ERROR):
        entry = describe_error(wire["ErrorCode"])
        assert entry is not None
        assert entry.documented
        assert (entry.description, entry.possible_solution) == (
            wire["ErrorDescription"],
            wire["PossibleSolution"],
        )
    assert texts(Language.EN).info["display_name_pending"] == LIMITED_INFO


def test_locale_files_ship_inside_the_package() -> None:
    folder = files("wahealth.domain") / "locales"
    assert sorted(f"{language.value}.toml" for language in Language) == sorted(
        entry.name for entry in folder.iterdir() if entry.name.endswith(".toml")
    )


def test_describe() -> None:
    assert describe(141006, Language.ID) == (
        "Terjadi kesalahan pada metode pembayaran.",
        "Terjadi kesalahan pada metode pembayaran Anda. Tambahkan metode pembayaran baru ke akun.",
    )
    assert describe("141002", "zh-CN") == describe(141002, Language.ZH)
    assert describe("141002", "pt-BR") == describe("141002")  # unserved: English
    assert describe(141003, Language.ID) is None
    assert describe("not a code") is None


# --- filling ---------------------------------------------------------------------------------


def test_english_fills_only_what_meta_left_out() -> None:
    bare = fill_error(HealthError(141006))
    assert (bare.error_description, bare.possible_solution) == describe(141006)
    half = fill_error(HealthError(141006, error_description="Meta's own words"))
    assert half.error_description == "Meta's own words"
    assert half.possible_solution == _described(141006)[1]
    empty = fill_error(HealthError("141006", error_description="", possible_solution=""))
    assert (empty.error_description, empty.possible_solution) == describe(141006)


@given(
    code=st.sampled_from(sorted(DOCUMENTED)),
    description=st.text(min_size=1),
    solution=st.text(min_size=1),
)
def test_english_never_alters_meta_text(code: str, description: str, solution: str) -> None:
    error = HealthError(int(code), description, solution, extra={"href": "x"})
    assert fill_error(error) is error
    assert fill_error(error, Language.EN) is error


@pytest.mark.parametrize("language", [Language.ID, Language.ZH])
def test_a_known_code_is_served_in_translation_and_its_extras_kept(language: Language) -> None:
    meta = HealthError(141002, "Meta's English.", "Meta's fix.", extra={"href": "x"})
    shown = fill_error(meta, language)
    assert (shown.error_description, shown.possible_solution) == describe(141002, language)
    assert shown.error_code == 141002
    assert shown.extra == {"href": "x"}
    assert meta.error_description == "Meta's English."  # the raw report is untouched


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_unknown_code_keeps_meta_text_in_every_language(language: Language) -> None:
    error = HealthError(141003, "Something new at Meta.", None)
    assert fill_error(error, language) is error


def test_limited_reasons_are_translated_only_when_known_word_for_word() -> None:
    zh = texts(Language.ZH).info["display_name_pending"]
    assert translate_info(LIMITED_INFO, Language.ZH) == zh
    assert translate_info(LIMITED_INFO, "id-ID") == texts(Language.ID).info["display_name_pending"]
    assert translate_info(LIMITED_INFO, Language.EN) == LIMITED_INFO
    assert translate_info(LIMITED_INFO + " ", Language.ZH) == LIMITED_INFO + " "
    assert translate_info("Some other limit.", Language.ID) == "Some other limit."


def _report() -> HealthReport:
    return HealthReport(
        node_id="1",
        entities=(
            Entity("PHONE_NUMBER", "1", "LIMITED", additional_info=(LIMITED_INFO, "Other.")),
            Entity("WABA", "2", "BLOCKED", errors=(HealthError(141006), HealthError(9))),
            Entity("APP", "3", "AVAILABLE"),
        ),
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_fill_and_localize() -> None:
    report = _report()
    phone, waba, app = fill(report.entities, Language.ID)
    assert phone.additional_info == (texts(Language.ID).info["display_name_pending"], "Other.")
    assert waba.errors[0].error_description == _described(141006, Language.ID)[0]
    assert waba.errors[1] is report.entities[1].errors[1]
    assert app is report.entities[2]
    assert fill_entity(report.entities[2], Language.ZH) is report.entities[2]
    localized = localize(report, Language.ZH)
    assert localized.entities[1].errors[0].possible_solution == _described(141006, "zh")[1]
    assert (localized.node_id, localized.fetched_at) == (report.node_id, report.fetched_at)


def test_localize_hands_back_the_report_when_nothing_changes() -> None:
    complete = HealthReport(
        node_id="1",
        entities=(Entity("WABA", "1", "BLOCKED", errors=(HealthError(141006, "a", "b"),)),),
        fetched_at=_report().fetched_at,
    )
    assert localize(complete) is complete
    assert localize(complete, Language.EN) is complete


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_stale_notice_names_when_it_was_fetched(language: Language) -> None:
    assert "2026-01-01T00:00:00+00:00" in notice(
        "stale", language, fetched_at="2026-01-01T00:00:00+00:00"
    )
