"""The consumers' child process: it archives, comes back when killed, and
flushes what the journal holds when the server stops."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from auditlake.app import build_consumers
from auditlake.config import LakeSettings, Settings
from auditlake.consumers.process import ConsumerProcess
from auditlake.core.event import EventInput
from auditlake.core.normalize import Limits, Origin, normalize
from auditlake.journal.sqlite import SqliteJournal
from auditlake.lake.layout import read_rows
from auditlake.lake.objects import LocalObjects


def append(journal: SqliteJournal, ids: list[str]) -> None:
    origin = Origin("acme", "key:test", "api", datetime.now(UTC))
    inputs = [EventInput(action="user.signed_in", id=i) for i in ids]
    journal.submit(normalize(inputs, origin, Limits())).result(timeout=10)


def archived(settings: Settings) -> list[str]:
    objects = LocalObjects(settings.lake_folder)
    found = []
    for path in objects.list(""):
        stored = objects.get(path)
        assert stored is not None
        found += [r["id"] for r in read_rows(stored[0])]
    return sorted(found)


def wait_for(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_child_archives_restarts_when_killed_and_flushes_on_stop(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=str(tmp_path), lake=LakeSettings(batch_events=10, batch_seconds=3600)
    )
    journal = SqliteJournal(settings.journal_path)
    journal.start()
    consumers = ConsumerProcess(build_consumers(settings), partial(build_consumers, settings))
    consumers.start()
    try:
        first = [f"a{n:02d}" for n in range(10)]  # one full batch: archived at once
        append(journal, first)
        wait_for(lambda: archived(settings) == first)
        child = consumers.process
        assert child is not None and child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        wait_for(lambda: consumers.process is not child and consumers.process is not None)
        second = [f"b{n:02d}" for n in range(10)]
        append(journal, second)
        wait_for(lambda: archived(settings) == first + second)
        # Fewer than a batch, and young: only the flush at stop writes them.
        last = ["c00", "c01", "c02"]
        append(journal, last)
        # The cursor moves just after the lake write that `archived` saw.
        wait_for(lambda: consumers.runners[0].lag()[0] == 3)
        assert archived(settings) == first + second
    finally:
        journal.close()
        consumers.close()
    assert archived(settings) == first + second + last
    assert not consumers.healthy()
