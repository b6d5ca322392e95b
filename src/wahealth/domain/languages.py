"""The languages wahealth answers in, and how a request chooses one.

English is the default and Meta's own language; Indonesian and Simplified Chinese are
served from the catalog's translations. A request chooses by `Accept-Language`
(RFC 9110 §12.5.4: the highest-weighted range we serve wins, ties go to the earlier
range, `q=0` refuses one) or by an explicit tag (Graph's `locale=id_ID`, the gate's
`lang=zh`). Nothing here ever fails: a header or tag we cannot use means English.

Chinese is served in Simplified script only: `zh`, `zh-CN`, `zh-SG`, `zh-Hans…` match it;
`zh-TW`, `zh-HK`, `zh-MO` and `zh-Hant…` name Traditional Chinese, which we do not have,
so they fall through to the caller's next preference (or English). Indonesian also
answers to `in`, its former ISO 639 code that Java and older Android still send.
"""

from __future__ import annotations

import enum
import functools


class Language(enum.StrEnum):
    """A language the catalog has texts in; the value is its primary language subtag."""

    EN = "en"
    ID = "id"
    ZH = "zh"

    @property
    def tag(self) -> str:
        """The BCP 47 tag of what is served (for `Content-Language`)."""
        return _TAGS[self]


# The default, as a module constant for the hot paths: reading an enum member as a class
# attribute costs a few hundred nanoseconds on Python 3.11, a constant a few dozen.
ENGLISH = Language.EN

_TAGS = {Language.EN: "en", Language.ID: "id", Language.ZH: "zh-Hans"}
_PRIMARY = {"en": Language.EN, "id": Language.ID, "in": Language.ID, "zh": Language.ZH}
_TRADITIONAL = frozenset({"hant", "tw", "hk", "mo"})

# Longer headers are read up to here: real browsers send well under 200 characters.
MAX_HEADER_CHARS = 1024
MAX_TAG_CHARS = 64


def language_of(tag: str | None) -> Language | None:
    """The served language a single tag names (`id`, `id-ID`, `zh_CN`, `en-US`), else None."""
    if not tag or len(tag) > MAX_TAG_CHARS:
        return None
    subtags = tag.strip().lower().replace("_", "-").split("-")
    language = _PRIMARY.get(subtags[0])
    if language is Language.ZH and "hans" not in subtags and _TRADITIONAL.intersection(subtags):
        return None
    return language


def choose(explicit: str | None = None, accept_language: str | None = None) -> Language:
    """An explicit tag when one is given (unserved: English), else the header's choice."""
    if explicit:
        return language_of(explicit) or Language.EN
    return negotiate(accept_language)


def negotiate(accept_language: str | None) -> Language:
    """The served language an `Accept-Language` header prefers most; English by default."""
    if not accept_language:
        return ENGLISH
    return _negotiate(accept_language[:MAX_HEADER_CHARS])


@functools.lru_cache(maxsize=512)
def _negotiate(header: str) -> Language:
    best = Language.EN
    best_q = 0.0
    for item in header.split(","):
        language_range, _, params = item.partition(";")
        language_range = language_range.strip()
        q = _weight(params)
        if q is None or q <= best_q:
            continue  # malformed, refused, or not preferred over an earlier range
        language = Language.EN if language_range == "*" else language_of(language_range)
        if language is not None:
            best, best_q = language, q
    return best


def _weight(params: str) -> float | None:
    """The range's `q` (1 when absent); None when malformed."""
    params = params.strip()
    if not params:
        return 1.0
    name, _, value = params.partition("=")
    if name.strip().lower() != "q":
        return None
    value = value.strip()
    # RFC 9110 qvalue: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]
    whole, _, fraction = value.partition(".")
    if whole not in ("0", "1") or len(fraction) > 3:
        return None
    if fraction and not (fraction.isascii() and fraction.isdigit()):
        return None
    q = float(value)
    return q if q <= 1.0 else None
