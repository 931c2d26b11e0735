"""What a word of text search (`q`) is, the same in every backend.

Pure. Text is compared in a folded form, so that strings a reader cannot
tell apart find each other, and no others:

- **Compatibility equivalence** (Unicode NFKC, UAX #15), in every script: a
  precomposed `é` and `e` + U+0301, Hangul syllables and their conjoining
  jamo, the Angstrom sign U+212B and `Å` U+00C5, the ligature U+FB01 and
  `fi`, full-width U+FF21 and `A` are the same.
- **Caseless** (Unicode full case folding, `str.casefold`): `Straße` is
  `strasse`.
- **Without diacritics, in Latin, Greek and Cyrillic only**: after
  decomposition, a nonspacing mark (category Mn) on a letter of those
  scripts is dropped, so `Renee` finds `Renée` and `Rene\u0301e`, as a user
  on a plain keyboard expects (SQLite's unicode61 `remove_diacritics` does
  the same for Latin). Every other mark stays: in Devanagari, Thai and the
  other scripts that write vowels and tones as marks, a mark makes another
  word (`कम` "less" and `काम` "work", `ปา` "throw" and `ป่า` "forest").

A word is then a run of letters and digits, with the marks that follow them
(`_`, punctuation and blanks separate words). The store indexes these folded
words, a query is folded the same way, and the lake checks them with
`core.query.matches`: so a search gives the same answer wherever the events
are.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# A word in ASCII text: a run of letters and digits.
WORD = re.compile(r"[^\W_]+")
# Scripts whose letters lose their diacritics (the first word of the
# letter's Unicode name).
_DIACRITIC_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})


def fold(text: str) -> str:
    """`text` in its search form: NFKD, case folded, nonspacing marks on
    Latin, Greek and Cyrillic letters removed, then NFC (which recomposes
    what is left: Hangul syllables, other scripts' marks).

    Folding twice changes nothing: `fold(fold(t)) == fold(t)`.
    """
    if text.isascii():
        return text.lower()  # ASCII is its own NFKD; casefold is lower there
    # casefold may itself produce marks or compatibility characters
    # (e.g. U+0130 -> "i" + U+0307), hence a decomposition on both sides of it.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    kept: list[str] = []
    base = ""  # the last character that is no mark
    for c in decomposed:
        if not unicodedata.category(c).startswith("M"):
            base = c
        elif unicodedata.category(c) == "Mn" and _loses_diacritics(base):
            continue
        kept.append(c)
    return unicodedata.normalize("NFC", "".join(kept))


@functools.lru_cache(maxsize=4096)
def _loses_diacritics(letter: str) -> bool:
    """Whether `letter` (one character, or "" for none) is a Latin, Greek
    or Cyrillic letter."""
    name = unicodedata.name(letter, "") if letter else ""
    return name.split(" ", 1)[0] in _DIACRITIC_SCRIPTS


def search_words(text: str) -> list[str]:
    """The folded words of `text`, in order (repeats kept)."""
    folded = fold(text)
    if folded.isascii():
        return WORD.findall(folded)
    words: list[str] = []
    word: list[str] = []
    for c in folded:
        if c.isalnum() or (word and unicodedata.category(c).startswith("M")):
            word.append(c)  # a mark belongs to the word it follows
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    return words


def index_text(text: str) -> str:
    """What the store's text index is given for `text`, so that its tokenizer
    (FTS5's `ascii`: words are runs of ASCII letters and digits and of every
    non-ASCII character, ASCII letters lowercased) sees exactly the words of
    `search_words(text)`: the folded words joined by single spaces, or ASCII
    text as it is, which that tokenizer splits and lowercases the same way
    (the recorder's common case, at no cost)."""
    if text.isascii():
        return text
    return " ".join(search_words(text))
