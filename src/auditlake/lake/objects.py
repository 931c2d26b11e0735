"""Object storage for the lake: one small Protocol, a local-folder backend here,
and S3 (any S3-compatible store) in `lake.s3`.

Contract of every backend (one contract test suite runs against each):

- Paths are `/`-separated keys relative to the store's root or prefix.
- `get(path)` returns the object's bytes and a version tag (an ETag), or None.
- `put(path, data, expected)` writes the whole object atomically: a reader
  sees the old object or the new one, never a part. It succeeds only if the
  current version is `expected` (None: the object must not exist yet), and
  returns False without writing when another writer got there first, so a
  read-merge-write can be retried instead of losing the other's rows.
- `list(prefix)` returns the paths below `prefix`, sorted.
- Errors that retrying may cure are transient `AuditlakeError`s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from auditlake.errors import Unavailable
from auditlake.files import FILE_MODE, private_folder


class ObjectStore(Protocol):
    """Where lake files live."""

    def get(self, path: str) -> tuple[bytes, str] | None:
        """The object's bytes and version tag, or None if there is none."""
        ...

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        """Replace the object if its version is still `expected`; False if not."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The paths below `prefix`, sorted."""
        ...


class LocalObjects:
    """A folder: temp file, fsync, rename, fsync of the folder.

    The version tag is a hash of the content. The compare and the rename
    happen under a lock shared by every `LocalObjects` of this process and an
    advisory lock file, so two archivers (threads or processes) on the same
    folder never both replace the same version.
    """

    _locks: dict[Path, threading.Lock] = {}

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, path: str) -> tuple[bytes, str] | None:
        """The file's bytes and content hash, or None."""
        try:
            data = (self.root / path).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
        return data, _tag(data)

    def put(self, path: str, data: bytes, expected: str | None) -> bool:
        """Write `data` at `path` atomically if the file is still at `expected`."""
        target = self.root / path
        private_folder(target.parent)
        with self._lock_for(target.parent), _FileLock(target.parent / ".lock"):
            current = self.get(path)
            if (current[1] if current else None) != expected:
                return False
            _write_atomically(target, data)
        return True

    def list(self, prefix: str) -> list[str]:
        """Every file below `prefix` (lock files and temp files left out)."""
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        found = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]
        return sorted(found)

    @classmethod
    def _lock_for(cls, folder: Path) -> threading.Lock:
        return cls._locks.setdefault(folder.resolve(), threading.Lock())


class _FileLock:
    """An exclusive `flock` on a lock file, for writers in other processes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        import fcntl

        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)  # releases the lock


def _write_atomically(target: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename over the target, fsync the folder:
    a crash at any point leaves the old file or the new one."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
