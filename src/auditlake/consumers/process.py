"""The journal consumers (the archiver) in a child process at low priority.

Archiving is off the acknowledgement path and has a minute to do its work,
so it must not take CPU or the interpreter lock from ingest and indexing:
inside the server's process, merging Parquet files cost the server ~50 us of
CPU per event during a burst of batches (bench/ingest.py, 2 cores). As a
niced child it runs on what the other two leave and catches up after a
burst; its backlog is the cursors' lag in /metrics.

Parent -> child over a pipe: `("close",)` at shutdown, after the journal has
drained; the child then flushes what the journal holds and exits. The child
dies with the parent. Positions are durable, so a new child (after a crash of
either) resumes where the last output was made durable.
"""

from __future__ import annotations

from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from auditlake.child_process import ChildSupervisor
from auditlake.consumers.runner import ConsumerGroup, ConsumerRunner

CONSUMER_NICENESS = 19  # the lowest: the recorder (5) and ingest (0) come first
# How long close() lets the child flush before it kills it (its positions are
# durable: the next start archives the rest), so a shutdown fits in the 90 s
# a service manager usually gives, even when the lake cannot be written.
CLOSE_SECONDS = 45.0


class ConsumerProcess:
    """Runs the group `build()` makes in a child process, supervised by a
    `ChildSupervisor` (restarted when it dies; see child_process). `build`
    is pickled to the child: a module-level function or a partial of one.

    `group`'s runners are parent-side twins of the child's consumers: they
    are never started and serve only `lag()` and `output_through()`, read
    from the journal's committed positions.
    """

    def __init__(self, group: ConsumerGroup, build: Callable[[], ConsumerGroup]) -> None:
        self._group = group
        self.runners: list[ConsumerRunner] = group.runners
        self._child = ChildSupervisor(
            "consumers",
            run_child,
            (build,),
            niceness=CONSUMER_NICENESS,
            close_seconds=CLOSE_SECONDS,
        )

    @property
    def process(self) -> BaseProcess | None:
        """The current child, if one runs."""
        return self._child.process

    def start(self) -> None:
        """Start the supervisor, which starts the child."""
        self._child.start()

    def output_through(self, consumer: str) -> int:
        """The last journal seq up to which `consumer`'s output has every event."""
        return self._group.runner(consumer).output_through()

    def healthy(self) -> bool:
        """False once the supervisor has stopped (stopped, or given up)."""
        return self._child.healthy()

    def close(self) -> None:
        """Let the child flush what the journal holds, then stop it."""
        self._child.close()
        self._group.close()


def run_child(pipe: Connection, build: Callable[[], ConsumerGroup]) -> None:
    """The child: run the consumers until the parent says close (or goes away)."""
    group = build()
    group.start()
    try:
        pipe.recv()  # ("close",)
    except (EOFError, OSError):  # the parent is gone: what was written is durable
        return
    group.close()
