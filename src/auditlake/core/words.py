"""What a word of text search (`q`) is, the same in every backend.

Pure. Text is compared in a folded form, so that strings a reader cannot
tell apart find each other:

- **Compatibility equivalence** (Unicode NFKC, UAX #15): a precomposed `é`
  and `e` + U+0301, Hangul syllables and their conjoining jamo, the Angstrom
  sign U+212B and `Å` U+00C5, the ligature U+FB01 and `fi`, full-width
  U+FF21 and `A` are the same.
- **Caseless** (Unicode full case folding, `str.casefold`): `Straße` is
  `strasse`.
- **Without marks**: every combining mark (categories Mn, Mc, Me) left after
  decomposition is dropped, so `Renee` finds `Renée` and `Rene\u0301e`, as a
  user typing on a plain keyboard expects. (The store's index has always
  ignored Latin diacritics; this makes it the rule for every script and
  every backend.)

A word is then a run of letters and digits (`WORD`; `_` and punctuation
separate words). The store indexes these folded words, a query is folded the
same way, and the lake checks them with `core.query.matches`: so a search
gives the same answer wherever the events are.
"""

from __future__ import annotations

import re
import unicodedata

# What counts as a word, in folded text.
WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """`text` in its search form: NFKD, case folded, combining marks removed,
    then NFC (which only recomposes Hangul syllables, as no marks are left).

    Folding twice changes nothing: `fold(fold(t)) == fold(t)`.
    """
    if text.isascii():
        return text.lower()  # ASCII is its own NFKD; casefold is lower there
    # casefold may itself produce marks or compatibility characters
    # (e.g. U+0130 -> "i" + U+0307), hence a decomposition on both sides of it.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    bare = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return unicodedata.normalize("NFC", bare)


def search_words(text: str) -> list[str]:
    """The folded words of `text`, in order (repeats kept)."""
    return WORD.findall(fold(text))


def index_text(text: str) -> str:
    """The folded words of `text` joined by single spaces: what the store's
    text index holds for an event (its tokenizer only splits at ASCII
    non-alphanumerics, so it sees exactly these words)."""
    return " ".join(search_words(text))
