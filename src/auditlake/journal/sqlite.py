"""The embedded journal: one SQLite writer thread with group commit.

Requests hand their normalized batch to `submit()`; the writer thread takes
everything queued (up to `max_commit_events`), inserts it into the `events`
table in one transaction, commits with a full fsync, and only then resolves
each caller's future. Many concurrent requests therefore share one fsync. The
queue is bounded in events: when it is full `submit()` raises `Overloaded`
instead of growing memory. Each request is judged on its own
(`journal.dedupe`): one refused for a conflicting id fails alone, and the
other requests of the commit are written. After each commit
`on_durable(last_seq)` tells the consumers (the recorder) that there is more
to read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import apsw

from auditlake.core.event import StoredEvent, fingerprint
from auditlake.errors import AuditlakeError, Overloaded, Unavailable
from auditlake.journal.base import AppendResult, CommitObserver, fail, resolve
from auditlake.journal.dedupe import Judged, Key, body_fingerprint, judge
from auditlake.sqlite_db import DbConnection, open_database, query, scalar, write_transaction

log = logging.getLogger(__name__)
_IN_CHUNK = 500
# While writes fail, the writer tries one (a probe) this often (seconds).
WRITE_PROBE_INTERVAL = 1.0
_PROBE = "CREATE TABLE auditlake_write_probe (x); DROP TABLE auditlake_write_probe"


class _Request:
    __slots__ = ("events", "future", "keep_first")

    def __init__(self, events: list[StoredEvent], keep_first: bool) -> None:
        self.events = events
        self.keep_first = keep_first
        self.future: Future[list[AppendResult]] = Future()


class SqliteJournal:
    """Group-commit writer over the `events` table of the embedded database."""

    def __init__(
        self,
        path: Path,
        *,
        queue_capacity: int = 50_000,
        max_commit_events: int = 10_000,
        on_commit: CommitObserver | None = None,
        on_durable: Callable[[int], None] | None = None,
    ) -> None:
        self._path = path
        self._capacity = queue_capacity
        self._max_commit = max_commit_events
        self._on_commit = on_commit
        self._on_durable = on_durable
        self._queue: deque[_Request] = deque()
        self._wakeup = threading.Condition()
        self._queued_events = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._conn: DbConnection | None = None
        self._committed = 0  # last seq committed
        self._failure: str | None = None  # why the last write failed, until one works

    def start(self) -> None:
        """Open the database (applying migrations) and start the writer."""
        self._conn = open_database(self._path, "journal")
        self._committed = int(scalar(self._conn, query("journal", "last_seq")))
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def submit(
        self, events: list[StoredEvent], *, keep_first: bool = False
    ) -> Future[list[AppendResult]]:
        """Queue a batch for the next group commit; never blocks. The future
        fails with `Conflict` if an event conflicts and not `keep_first`."""
        request = _Request(events, keep_first)
        with self._wakeup:
            if self._closing or not self.healthy():
                raise Unavailable("the journal is not accepting writes")
            if self._queued_events and self._queued_events + len(events) > self._capacity:
                raise Overloaded("the write queue is full; retry shortly", {"retry_after": 1})
            self._queue.append(request)
            self._queued_events += len(events)
            self._wakeup.notify()
        return request.future

    def head(self) -> int:
        """The position of the last durable record (0: none)."""
        return self._committed

    def pending(self) -> int:
        """Events queued but not yet committed."""
        return self._queued_events

    def healthy(self) -> bool:
        """False once the writer thread has stopped."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def write_failure(self) -> str | None:
        """Why writes fail (e.g. "database or disk is full"), or None when the
        last write worked. While writes fail, the idle writer tries a small
        write every WRITE_PROBE_INTERVAL, so this clears once the disk has room."""
        return self._failure

    def close(self) -> None:
        """Commit everything already submitted, then stop the writer."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        try:
            while True:
                group = self._next_group()
                if group is None:
                    return
                if group:
                    self._commit_group(group)
                else:
                    self._probe()
        finally:  # whatever stopped the writer, nobody is left waiting
            with self._wakeup:
                self._closing = True
                left, self._queue = list(self._queue), deque()
            for request in left:
                fail(request.future, Unavailable("the journal stopped"))

    def _next_group(self) -> list[_Request] | None:
        """Everything queued (up to `max_commit_events`), or None once closed."""
        with self._wakeup:
            while not self._queue:
                if self._closing:
                    return None
                if not self._wakeup.wait(WRITE_PROBE_INTERVAL if self._failure else None):
                    return []  # idle while writes fail: the caller probes
            group: list[_Request] = []
            count = 0
            while self._queue and (
                not group or count + len(self._queue[0].events) <= self._max_commit
            ):
                request = self._queue.popleft()
                group.append(request)
                count += len(request.events)
            return group

    def _commit_group(self, group: list[_Request]) -> None:
        started = time.perf_counter()
        count = sum(len(request.events) for request in group)
        try:
            results = self._write(group)
        except Exception as exc:  # the whole group failed: nothing of it was committed
            error = self._failed(exc, f"group commit of {count} events")
            for request in group:
                fail(request.future, error)
        else:
            self._failure = None
            # The callers first: `head()` already counts their events, so a
            # search right after an acknowledged write waits for it (it asks
            # the recorder to sync up to the head); the consumers' news (a
            # pipe write, a child woken on a busy core) comes after.
            for request, judged in zip(group, results, strict=True):
                if judged.conflict is not None:
                    fail(request.future, judged.conflict)
                else:
                    resolve(request.future, judged.results)
            self._observe(count, time.perf_counter() - started)
        finally:
            with self._wakeup:
                self._queued_events -= count

    def _failed(self, exc: Exception, what: str) -> AuditlakeError:
        """Note why a write failed; the error its callers get (503 naming the cause)."""
        if isinstance(exc, AuditlakeError):
            return exc
        if isinstance(exc, apsw.Error):  # the database said no: its words are the cause
            cause = str(exc) or type(exc).__name__
            log.error("%s failed: %s", what, cause)
        else:
            cause = f"{type(exc).__name__}: {exc}"
            log.exception("%s failed", what)
        self._failure = cause
        return Unavailable(f"the journal cannot write: {cause}", {"retry_after": 1})

    def _probe(self) -> None:
        """A write the size of a page (a table made and dropped in one
        transaction), to learn whether writes work again while none come."""
        conn = self._conn
        assert conn is not None
        try:
            with write_transaction(conn):
                conn.execute(_PROBE)
        except apsw.Error as exc:
            self._failure = str(exc) or type(exc).__name__
        else:
            log.info("the journal can write again")
            self._failure = None

    def _observe(self, count: int, seconds: float) -> None:
        """Tell the observers, the consumers first; one that fails never
        keeps the others from hearing, nor stops the writer."""
        if self._on_durable is not None:
            _tell(self._on_durable, self._committed)
        if self._on_commit is not None:
            _tell(self._on_commit, count, seconds)

    def _write(self, group: list[_Request]) -> list[Judged]:
        conn = self._conn
        assert conn is not None
        with write_transaction(conn):
            # Read under the write lock: another process (`auditlake poll
            # --once` beside a server) may have appended since our last commit.
            last = int(scalar(conn, query("journal", "last_seq")))
            results, rows = _new_rows(conn, group, last + 1)
            conn.executemany(query("journal", "insert_event"), rows)
        self._committed = last + len(rows)
        return results


def journal_row(seq: int, stored: StoredEvent) -> tuple[object, ...]:
    """The `events` row of `stored` at `seq` (the `insert_event` statement's order)."""
    event = stored.event
    return (seq, event.tenant, event.id, stored.occurred_us, stored.received_us, stored.body)


def _new_rows(
    conn: DbConnection, group: list[_Request], first_seq: int
) -> tuple[list[Judged], list[tuple[object, ...]]]:
    """Per request its verdict, and the rows of the events to write."""
    stored_keys = _StoredKeys(conn, [e for r in group for e in r.events if not e.new_id])
    rows: list[tuple[object, ...]] = []
    verdicts = []
    for request in group:
        judged = judge(request.events, stored_keys.fingerprint, keep_first=request.keep_first)
        for index in judged.written:
            stored = request.events[index]
            if not stored.new_id:
                stored_keys.written(stored)  # the requests after this one see it
            rows.append(journal_row(first_seq + len(rows), stored))
        verdicts.append(judged)
    stored_keys.cache_fingerprints()
    return verdicts, rows


class _StoredKeys:
    """The keys of one group commit's events that are stored already, and their
    fingerprints, computed only when asked (a key that comes again): from the
    `fingerprint` column where an earlier hit cached it, else from the body."""

    def __init__(self, conn: DbConnection, events: list[StoredEvent]) -> None:
        self._conn = conn
        # Per stored key: (seq, cached fingerprint, body when none is cached).
        self._rows: dict[Key, tuple[int, bytes | None, bytes | None]] = {}
        self._group: dict[Key, StoredEvent] = {}  # written by this commit
        self._prints: dict[Key, bytes] = {}
        self._computed: list[tuple[bytes, int]] = []  # (fingerprint, seq) to cache
        by_tenant: dict[str, list[str]] = {}
        for stored in events:
            by_tenant.setdefault(stored.event.tenant, []).append(stored.event.id)
        for tenant, ids in by_tenant.items():
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                # The body is read only for a row without a cached fingerprint.
                sql = (
                    "SELECT id, seq, fingerprint, CASE WHEN fingerprint IS NULL THEN body END "
                    f"FROM events WHERE tenant = ? AND id IN ({marks})"
                )
                for event_id, seq, print_, body in conn.execute(sql, (tenant, *chunk)):
                    self._rows[(tenant, event_id)] = (seq, print_, body)

    def fingerprint(self, key: Key) -> bytes | None:
        """The fingerprint of the event stored (or written by this commit)
        under `key`, or None when the key is new."""
        if key in self._prints:
            return self._prints[key]
        if key in self._group:
            print_ = fingerprint(self._group[key].event)
        elif key in self._rows:
            seq, cached, body = self._rows[key]
            if cached is None:
                assert body is not None
                cached = body_fingerprint(body)
                self._computed.append((cached, seq))
            print_ = cached
        else:
            return None
        self._prints[key] = print_
        return print_

    def written(self, stored: StoredEvent) -> None:
        """`stored`, whose id was sent (not `new_id`), is written by this commit."""
        self._group[(stored.event.tenant, stored.event.id)] = stored

    def cache_fingerprints(self) -> None:
        """Keep the fingerprints computed from bodies, in the commit's
        transaction: a key that comes again (a poller's overlap, a client's
        retries) is not decoded again."""
        if self._computed:
            self._conn.executemany(query("journal", "cache_fingerprint"), self._computed)


def _tell(observer: Callable[..., None], *args: object) -> None:
    try:
        observer(*args)
    except Exception:
        log.exception("a commit observer failed")
