"""Text search words: canonically (and compatibly) equivalent strings fold to
the same words, so `q` finds them however either side was typed or stored."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlake.core.event import Actor, Event, Target
from auditlake.core.query import Filters, matches
from auditlake.core.words import fold, index_text, search_words

# (one form, another form of the same text, their folded words)
EQUIVALENT = [
    ("Renée", "Rene\u0301e", ["renee"]),  # precomposed / decomposed e + acute
    ("한국", "\u1112\u1161\u11ab\u1100\u116e\u11a8", ["한국"]),  # syllables / conjoining jamo
    ("\u00c5ngstr\u00f6m", "\u212bngstro\u0308m", ["angstrom"]),  # Å U+00C5 / Angstrom sign
    ("\u01c4emal", "D\u017demal", ["dzemal"]),  # the digraph letter U+01C4 / D + Ž
    ("\ufb01le", "file", ["file"]),  # the ligature U+FB01
    ("\uff21\uff22\uff23", "abc", ["abc"]),  # full-width letters
    ("Straße", "STRASSE", ["strasse"]),  # full case folding
    ("İstanbul", "istanbul", ["istanbul"]),  # U+0130 folds to i + a dot, which goes
    ("Ελληνικά", "ΕΛΛΗΝΙΚΑ", ["ελληνικα"]),  # Greek: accent and case
    ("Zoë_Smith", "zoe smith", ["zoe", "smith"]),  # `_` separates words
]


@pytest.mark.parametrize(("one", "other", "words"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_equivalent_forms_fold_to_the_same_words(
    one: str, other: str, words: list[str] | None
) -> None:
    assert search_words(one) == search_words(other)
    assert search_words(one)  # never folded away to nothing
    if words is not None:
        assert search_words(one) == words


def test_the_forms_differ_before_folding() -> None:
    # The cases above are real: without folding they would not compare equal.
    for one, other, _ in EQUIVALENT[:4]:
        assert one != other
    assert unicodedata.normalize("NFC", "\u212b") == "\u00c5"


# Words that differ by a mark that is no Latin, Greek or Cyrillic diacritic:
# in these scripts a mark writes a vowel or a tone, and makes another word.
DIFFERENT = [
    ("कम", "काम"),  # Devanagari: "less" / "work", the vowel sign AA (Mc)
    ("दिन", "दीन"),  # Devanagari: "day" / "poor", vowel signs I / II
    ("किस", "कुस"),  # Devanagari: the vowel signs I (Mc) / U (Mn)
    ("ปา", "ป่า"),  # Thai: "throw" / "forest", the tone mark MAI EK (Mn)
    ("สิ", "สี"),  # Thai: the vowels SARA I / SARA II (Mn)
    ("בַּ", "בֶּ"),  # Hebrew: the points PATAH / SEGOL (Mn)
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT, ids=[d[1] for d in DIFFERENT])
def test_marks_of_other_scripts_make_other_words(one: str, other: str) -> None:
    assert search_words(one) != search_words(other)
    assert len(search_words(one)) == len(search_words(other)) == 1  # a mark splits no word
    event = _event(f"{one} x", "actor")
    assert matches(event, 0, Filters(q=one))
    assert not matches(event, 0, Filters(q=other))
    assert not matches(_event(other, "metadata"), 0, Filters(q=one))


def test_latin_greek_and_cyrillic_lose_their_diacritics_only() -> None:
    assert search_words("Ελληνικά Ёлка crème") == ["ελληνικα", "елка", "creme"]
    assert search_words("कम") == ["कम"] and search_words("हिन्दी") == ["हिन्दी"]
    assert search_words("ป่า ไม้") == ["ป่า", "ไม้"]  # marks kept, inside their words


def test_other_words_stay_apart() -> None:
    assert search_words("Renée Dubois") != search_words("Rene Dubois x")
    assert search_words("héllo wörld") == ["hello", "world"]
    assert search_words("a-b.c/d") == ["a", "b", "c", "d"]
    assert search_words("...") == []


def test_index_text_is_the_words_joined_by_spaces() -> None:
    assert index_text("Rene\u0301e  Dubois, ada@EXAMPLE.com") == "renee dubois ada example com"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_folding_twice_changes_nothing(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert search_words(index_text(text)) == search_words(text)


T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _event(name: str, where: str) -> Event:
    actor = Actor(id="u1", name=name) if where == "actor" else None
    targets = [Target(id="t1", name=name)] if where == "target" else []
    metadata = {"who": {"list": [name]}} if where == "metadata" else {}
    return Event(
        id="e", tenant="acme", action="a.b", occurred_at=T, received_at=T, source="api",
        caller="key:k", actor=actor, targets=targets, metadata=metadata,
    )  # fmt: skip


@pytest.mark.parametrize("where", ["actor", "target", "metadata"])
@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("Renée Dubois", "Rene\u0301e"),
        ("Rene\u0301e Dubois", "Renée"),
        ("Rene\u0301e Dubois", "Rene\u0301e dub"),
        ("Renée Dubois", "renee"),
        ("\u1112\u1161\u11ab\u1100\u116e\u11a8 corp", "한국"),
        ("한국 corp", "\u1112\u1161\u11ab"),
        ("\u212b lab", "\u00c5"),
        ("\u00c5 lab", "\u212b"),
    ],
)
def test_reference_search_matches_equivalent_text(stored: str, typed: str, where: str) -> None:
    event = _event(stored, where)
    assert matches(event, 0, Filters(q=typed))
    assert not matches(event, 0, Filters(q=typed + " zzz"))
