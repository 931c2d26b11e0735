"""The one lifecycle of auditlake's long-running parts (journals, the
recorder, the consumers and their runners, pollers, retention, child
processes), written down once.

- `start()` begins the work: opens what the part needs and starts its
  threads or child process. Called once.
- `close()` finishes what was accepted (drains, flushes, commits), then stops
  and releases what it holds; durable state stays. Each part bounds the time
  it takes and, past that, abandons the rest: positions are durable, so the
  next start resumes where the last output was made durable. Nothing starts
  again after `close()`.
- `healthy()`, declared by the parts that run on their own (a thread, a
  child process), turns False once it stopped, or gave up after repeated
  failures.
"""

from __future__ import annotations

from typing import Protocol


class Part(Protocol):
    """A long-running part: `start()`, then `close()`."""

    def start(self) -> None:
        """Begin the work."""

    def close(self) -> None:
        """Finish what was accepted, then stop."""
