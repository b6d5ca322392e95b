"""Choosing the answer's language: Accept-Language weights, explicit tags, never an error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wahealth.domain.languages import MAX_HEADER_CHARS, Language, choose, language_of, negotiate

EN, ID, ZH = Language.EN, Language.ID, Language.ZH


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, EN),
        ("", EN),
        ("id", ID),
        ("id-ID", ID),
        ("in-ID", ID),  # Indonesian's former code, still sent by Java and older Android
        ("zh", ZH),
        ("zh-CN", ZH),
        ("ZH-cn", ZH),
        ("zh-Hans-CN", ZH),
        ("zh-SG", ZH),
        ("zh-TW", EN),  # Traditional Chinese is not served
        ("zh-Hant", EN),
        ("zh-HK,zh;q=0.8", ZH),  # ... but a plain zh after it is
        ("zh-Hant-TW, id;q=0.1", ID),
        ("en-US,en;q=0.9,id;q=0.8", EN),
        ("fr-FR, fr;q=0.9, id;q=0.3, en;q=0.5", EN),  # the higher weight wins
        ("fr-FR, fr;q=0.9, id;q=0.5, en;q=0.3", ID),
        ("id;q=0.5, zh;q=0.5", ID),  # a tie goes to the earlier range
        ("zh, id", ZH),
        ("*", EN),
        ("id;q=0, zh;q=0.1", ZH),  # q=0 refuses
        ("id;q=0", EN),
        ("id ; q=0.7 , zh ; q=0.6", ID),  # optional whitespace
        ("id;Q=0.9,zh;q=0.95", ZH),
        ("id;q=1.5, zh;q=0.2", ZH),  # an invalid weight drops its range
        ("id;q=abc, zh;q=0.2", ZH),
        ("id;q=0.1234, zh;q=0.2", ZH),  # more than three decimals is invalid
        ("id;q=0.\u0665, zh;q=0.2", ZH),  # only ASCII digits count
        ("id;level=1, zh;q=0.2", ZH),  # Accept-Language has no other parameters
        (",,,id", ID),
        ("fr, de", EN),
        ("i" * 5000, EN),
    ],
)
def test_accept_language(header: str | None, expected: Language) -> None:
    assert negotiate(header) is expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("id_ID", ID),
        ("zh_CN", ZH),
        ("zh_TW", None),
        ("en_US", EN),
        ("pt_BR", None),
        ("", None),
        ("id" + "-x" * 100, None),
    ],
)
def test_single_tags_as_graph_locale_sends_them(tag: str, expected: Language | None) -> None:
    assert language_of(tag) is expected


def test_an_explicit_tag_overrides_the_header_and_an_unserved_one_means_english() -> None:
    assert choose("zh_CN", "id") is ZH
    assert choose("fr_FR", "id") is EN
    assert choose(None, "id") is ID
    assert choose("", "id") is ID  # an empty locale= is no choice


def test_a_header_is_read_only_up_to_its_bound() -> None:
    assert negotiate("fr," * (MAX_HEADER_CHARS // 3) + "id") is EN


def test_the_tags_served() -> None:
    assert [language.tag for language in Language] == ["en", "id", "zh-Hans"]


@given(st.text(max_size=300))
def test_any_header_chooses_a_served_language(header: str) -> None:
    assert negotiate(header) in Language


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["en", "id", "zh-CN", "fr", "de-DE", "zh-TW", "*"]),
            st.sampled_from(["", ";q=0", ";q=0.1", ";q=0.5", ";q=0.500", ";q=1", ";q=1.0"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_chosen_language_has_the_highest_weight(ranges: list[tuple[str, str]]) -> None:
    header = ", ".join(tag + weight for tag, weight in ranges)
    served = {"en": EN, "id": ID, "zh-CN": ZH, "*": EN}
    weighted = [
        (float(weight.partition("=")[2] or 1), served[tag])
        for tag, weight in ranges
        if tag in served
    ]
    best = max((q for q, _ in weighted), default=0.0)
    if best == 0.0:
        assert negotiate(header) is EN
    else:
        first_best = next(language for q, language in weighted if q == best)
        assert negotiate(header) is first_best
