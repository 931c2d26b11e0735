"""`q` finds canonically equivalent text in every backend: the SQLite store,
the lake and the memory log give the same answer whichever form was stored
and whichever was typed; and a store indexed before the folded words gets
its text index written again on upgrade."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.backend_pairs import SqlitePair, stored

from auditlake.core.event import Event, StoredEvent, search_text
from auditlake.core.query import Filters, Query, parse_query
from auditlake.core.words import index_text, search_words
from auditlake.journal.memory import MemoryEventLog
from auditlake.journal.sqlite_reader import SqliteJournalReader
from auditlake.lake.layout import merge
from auditlake.lake.objects import LocalObjects
from auditlake.lake.paths import partition_path
from auditlake.lake.reader import LakeReader
from auditlake.sqlite_db import connect, migrate
from auditlake.store.sqlite_recorder import SqliteIndexSink

DECOMPOSED, PRECOMPOSED = "Rene\u0301e", "Renée"
JAMO, SYLLABLES = "\u1112\u1161\u11ab\u1100\u116e\u11a8", "한국"
ANGSTROM, A_RING = "\u212bstr\u00f6m", "\u00c5stro\u0308m"
LESS, WORK = "कम", "काम"  # Devanagari: "less", "work" (the vowel sign AA)
THROW, FOREST = "ปา", "ป่า"  # Thai: "throw", "forest" (the tone mark MAI EK)

# One event per (stored form, place): actor name, target name, metadata value.
EVENTS: list[dict[str, Any]] = [
    {"id": "actor-nfd", "actor": {"id": "u1", "name": f"{DECOMPOSED} Dubois"}},
    {"id": "actor-nfc", "actor": {"id": "u2", "name": f"{PRECOMPOSED} Martin"}},
    {"id": "target-jamo", "targets": [{"id": "t1", "name": f"{JAMO} team"}]},
    {"id": "target-syllables", "targets": [{"id": "t2", "name": f"{SYLLABLES} ops"}]},
    {"id": "meta-angstrom", "metadata": {"lab": {"head": ANGSTROM}}},
    {"id": "meta-a-ring", "metadata": {"lab": [A_RING]}},
    {"id": "plain", "actor": {"id": "u3", "name": "Rene Renard"}, "metadata": {"k": "Astrid"}},
    # Words that differ by a vowel sign or a tone mark: no diacritics, other words.
    {"id": "deva-less", "actor": {"id": "u4", "name": f"{LESS} दाम"}},
    {"id": "deva-work", "actor": {"id": "u5", "name": WORK}},
    {"id": "thai-throw", "targets": [{"id": "t3", "name": THROW}]},
    {"id": "thai-forest", "metadata": {"where": FOREST}},
]
# What each typed `q` must find, whatever form it is typed in.
EXPECTED = {
    PRECOMPOSED: {"actor-nfd", "actor-nfc"},
    DECOMPOSED: {"actor-nfd", "actor-nfc"},
    f"{DECOMPOSED} dub": {"actor-nfd"},
    "RENEE": {"actor-nfd", "actor-nfc"},
    "ren": {"actor-nfd", "actor-nfc", "plain"},
    SYLLABLES: {"target-jamo", "target-syllables"},
    JAMO: {"target-jamo", "target-syllables"},
    "\u1112\u1161\u11ab": {"target-jamo", "target-syllables"},  # a prefix, in jamo
    ANGSTROM: {"meta-angstrom", "meta-a-ring"},
    A_RING: {"meta-angstrom", "meta-a-ring"},
    "astr": {"meta-angstrom", "meta-a-ring", "plain"},
    "\u212b": {"meta-angstrom", "meta-a-ring", "plain"},
    f"{SYLLABLES} {PRECOMPOSED}": set(),
    LESS: {"deva-less"},
    WORK: {"deva-work"},
    f"{LESS} दा": {"deva-less"},
    THROW: {"thai-throw"},
    FOREST: {"thai-forest"},
}


def _stored() -> list[StoredEvent]:
    return stored("acme", *({"action": "user.renamed", **e} for e in EVENTS))


def _ids(events: list[bytes] | list[Event]) -> set[str]:
    return {e.id if isinstance(e, Event) else msgspec.json.decode(e, type=Event).id for e in events}


def _query(q: str) -> Query:
    return parse_query("acme", {"q": q, "limit": "100"})


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> LakeReader:
    objects = LocalObjects(tmp_path_factory.mktemp("lake"))
    events = [s.event for s in _stored()]
    assert len({partition_path("acme", e.occurred_at) for e in events}) == 1
    objects.put(partition_path("acme", events[0].occurred_at), merge(None, events)[0], None)
    return LakeReader(objects)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sqlite = SqlitePair(tmp_path_factory.mktemp("store"))
    sqlite.append(_stored())
    yield sqlite
    sqlite.close()


@pytest.mark.parametrize("typed", list(EXPECTED))
def test_every_backend_finds_the_equivalent_forms(
    typed: str, pair: SqlitePair, lake: LakeReader
) -> None:
    memory = MemoryEventLog()
    memory.start()
    memory.submit(_stored()).result()
    query = _query(typed)
    assert _ids(pair.search(query).events) == EXPECTED[typed]
    assert _ids(lake.search(query).events) == EXPECTED[typed]
    assert _ids(memory.search(query).events) == EXPECTED[typed]


def _as_before_folding(store_path: Path, journal_path: Path) -> None:
    """Turn a store back into one of before migration 0003: the text index of
    0001 (unicode61), holding each event's unfolded text."""
    store, journal = connect(store_path), connect(journal_path)
    store.execute(
        "DROP TABLE events_text; DROP TABLE text_reindex;"
        "DELETE FROM schema_migrations WHERE version >= 3;"
        "CREATE VIRTUAL TABLE events_text USING fts5 (words, content = '', detail = none,"
        " tokenize = 'unicode61 remove_diacritics 2')"
    )
    for seq, body in journal.execute("SELECT seq, body FROM events"):
        text = search_text(msgspec.json.decode(body, type=Event))
        store.execute("INSERT INTO events_text (rowid, words) VALUES (?, ?)", (seq, text))
    store.close()
    journal.close()


def test_an_old_store_gets_its_text_index_again_in_batches(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    pair.append(_stored())
    pair.search(_query("x"))  # indexed
    pair.close()
    _as_before_folding(tmp_path / "store.db", tmp_path / "journal.db")
    store = connect(tmp_path / "store.db")
    journal = SqliteJournalReader(tmp_path / "journal.db").subscribe("reindex")
    assert migrate(store, "store") == [3]
    assert store.execute("SELECT count(*) FROM events_text").fetchone() == (0,)
    sink, batches = SqliteIndexSink(store), 0
    while sink.reindex_text(journal, 3):
        batches += 1
    assert batches == len(EVENTS) // 3  # 7 events: two full batches, then the last one
    assert store.execute("SELECT count(*) FROM text_reindex").fetchone() == (0,)
    assert not sink.reindex_text(journal, 3)  # nothing pending: a no-op
    store.close()
    journal.close()
    again = SqlitePair(tmp_path)
    try:
        for typed, expected in EXPECTED.items():
            assert _ids(again.search(_query(typed)).events) == expected, typed
    finally:
        again.close()


def test_the_recorder_reindexes_an_old_store_by_itself(tmp_path: Path) -> None:
    pair = SqlitePair(tmp_path)
    pair.append(_stored())
    pair.search(_query("x"))
    pair.close()
    _as_before_folding(tmp_path / "store.db", tmp_path / "journal.db")
    again = SqlitePair(tmp_path)  # its recorder migrates, then reindexes once caught up
    try:
        # A new event is indexed at once, beside the reindex.
        again.append(stored("acme", {"id": "new", "action": "a", "actor": {"id": DECOMPOSED}}))
        store = connect(tmp_path / "store.db")
        deadline = time.monotonic() + 20
        while store.execute("SELECT count(*) FROM text_reindex").fetchone() != (0,):
            assert time.monotonic() < deadline, "the reindex did not finish"
            time.sleep(0.05)
        store.close()
        assert _ids(again.search(_query(PRECOMPOSED)).events) == {"actor-nfd", "actor-nfc", "new"}
        assert _ids(again.search(_query(JAMO)).events) == EXPECTED[JAMO]
    finally:
        again.close()


def test_filters_without_q_are_untouched_by_folding(pair: SqlitePair) -> None:
    # Exact filters compare the stored bytes: only `q` folds.
    query = Query("acme", Filters(actor_id="u1"), limit=10)
    assert _ids(pair.search(query).events) == {"actor-nfd"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=30))
def test_the_text_index_sees_exactly_the_search_words(text: str) -> None:
    """ASCII text goes to the index as it is; the `ascii` tokenizer makes of
    it (and of the folded words of any other text) the words `q` looks for."""
    db = connect(Path(":memory:"), wal=False)
    db.execute("CREATE VIRTUAL TABLE t USING fts5 (words, detail = none, tokenize = 'ascii')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'row')")
    db.execute("INSERT INTO t (words) VALUES (?)", (index_text(text),))
    terms = {term for (term,) in db.execute("SELECT term FROM v")}
    db.close()
    assert terms == set(search_words(text))
