"""`auditlake publish` reads NDJSON: a line that names a key twice is refused
before anything is sent (decoding it would keep only the last value)."""

from __future__ import annotations

import io

import pytest

from auditlake.cli.remote import _batches
from auditlake.errors import MalformedInput


def test_lines_are_batched() -> None:
    lines = b'{"action": "a"}\n\n{"action": "b", "actor": {"id": "1"}}\n{"action": "c"}\n'
    batches = list(_batches(io.BytesIO(lines), 2))
    assert [[e["action"] for e in batch] for _, batch in batches] == [["a", "b"], ["c"]]
    assert [numbers for numbers, _ in batches] == [[1, 3], [4]]  # blank lines are counted


@pytest.mark.parametrize(
    ("line", "field"),
    [(b'{"action": "a", "action": "b"}', "action"),
     (b'{"action": "a", "actor": {"id": "1", "id": "2"}}', "actor.id")],
)  # fmt: skip
def test_a_line_naming_a_key_twice_is_refused_with_its_number(line: bytes, field: str) -> None:
    stream = io.BytesIO(b'{"action": "ok"}\n' + line + b"\n")
    with pytest.raises(MalformedInput, match=r"^line 2: ") as caught:
        list(_batches(stream, 100))
    assert caught.value.details[0]["field"] == field
