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
- `folders(prefix)` returns the names of the folders directly below
  `prefix` that hold at least one object, sorted (a store without real
  folders, like S3, has no empty ones either).
- `delete(path, expected)` removes the object if its version is still
  `expected` and returns False without removing it when it has another
  version; an object already gone is deleted (True).
- Errors that retrying may cure are transient `AuditlakeError`s.
"""

from __future__ import annotations

import builtins
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

    def folders(self, prefix: str) -> builtins.list[str]:
        """The names of the folders directly below `prefix` holding an object, sorted."""
        ...

    def delete(self, path: str, expected: str) -> bool:
        """Remove the object if its version is still `expected`; False if not."""
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

    def folders(self, prefix: str) -> builtins.list[str]:
        """The folders directly below `prefix` with a file somewhere below
        them (lock and temp files do not count)."""
        base = self.root / prefix if prefix else self.root
        try:
            children = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise Unavailable(f"cannot list {prefix or 'the lake'}: {exc.strerror}") from None
        return sorted(p.name for p in children if _holds_a_file(p))

    def delete(self, path: str, expected: str) -> bool:
        """Remove the file if it is still at `expected`, under the same locks
        as `put`, so a writer of the file is never lost; the folder stays."""
        target = self.root / path
        if not target.parent.is_dir():
            return True
        with self._lock_for(target.parent), _FileLock(target.parent / ".lock"):
            current = self.get(path)
            if current is None:
                return True
            if current[1] != expected:
                return False
            try:
                target.unlink()
            except OSError as exc:
                raise Unavailable(f"cannot delete {path}: {exc.strerror}") from None
            _fsync_folder(target.parent)
        return True

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
    _fsync_folder(target.parent)


def _fsync_folder(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    folder = os.open(path, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _holds_a_file(folder: Path) -> bool:
    """Whether a file other than a lock or temp file is below `folder`
    (a folder whose files were all moved away holds only lock files)."""
    return any(p.is_file() and not p.name.startswith(".") for p in folder.rglob("*"))


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
