"""Dead letters: what a journal consumer or a poller gave up on, kept with
the reason for inspection and replay. One shape for every owner:

- a consumer's letter is a journal record: `key` is its position as text,
  `position` the position, `item` the stored event (so a replay does not
  depend on retention having left it in the journal);
- a poller's letter is a vendor item that never reached the journal: `key`
  identifies the item (a digest of it), `position` is None, `item` the
  vendor's JSON.

An owner keeps one letter per key: a letter added again replaces the
reason and keeps the first `recorded_at`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

import msgspec


class DeadLetter(msgspec.Struct, frozen=True):
    """One item an owner (a consumer, or a poller's source) gave up on."""

    owner: str
    key: str
    position: int | None
    reason: str
    recorded_at: str
    # The item's JSON as it was stored (written inline when encoded); None
    # for a consumer's letter of an earlier release, which kept only the
    # position: its event is read from the journal.
    item: msgspec.Raw | None = None


class DeadLetters(Protocol):
    """Where dead letters are kept (the contract is the module's)."""

    def add(self, owner: str, key: str, reason: str, item: bytes, position: int | None) -> None:
        """Keep `item` (JSON) with the reason; durable on return."""
        ...

    def letters(self, owner: str) -> list[DeadLetter]:
        """`owner`'s letters: by position, then in the order they came."""
        ...

    def first_position(self, owner: str) -> int | None:
        """The lowest journal position among `owner`'s letters, if any."""
        ...

    def forget(self, owner: str, key: str) -> None:
        """Remove a letter (it was replayed)."""
        ...


class MemoryDeadLetters:
    """`DeadLetters` in memory, for tests and the in-memory journal."""

    def __init__(self) -> None:
        self._letters: dict[tuple[str, str], DeadLetter] = {}
        self._lock = threading.Lock()

    def add(self, owner: str, key: str, reason: str, item: bytes, position: int | None) -> None:
        """Keep `item` with the reason (replacing the reason of an earlier one)."""
        with self._lock:
            earlier = self._letters.get((owner, key))
            recorded = now_text() if earlier is None else earlier.recorded_at
            letter = DeadLetter(owner, key, position, reason, recorded, msgspec.Raw(item))
            self._letters[owner, key] = letter

    def letters(self, owner: str) -> list[DeadLetter]:
        """`owner`'s letters by position, then in the order they came."""
        with self._lock:
            mine = [letter for (o, _), letter in self._letters.items() if o == owner]
        return sorted(mine, key=lambda letter: -1 if letter.position is None else letter.position)

    def first_position(self, owner: str) -> int | None:
        """The lowest position among `owner`'s letters."""
        positions = [d.position for d in self.letters(owner) if d.position is not None]
        return min(positions, default=None)

    def forget(self, owner: str, key: str) -> None:
        """Remove a letter."""
        with self._lock:
            self._letters.pop((owner, key), None)


def now_text() -> str:
    """The current time as RFC 3339 text (a letter's `recorded_at`)."""
    return datetime.now(UTC).isoformat()
