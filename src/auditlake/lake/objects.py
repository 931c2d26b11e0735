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
import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from auditlake.errors import Unavailable
from auditlake.files import FILE_MODE, private_folder

# Below a local lake's root: the folder of lock and temp files (see LocalObjects).
WORK_FOLDER = ".locks"
LOCK_NAME = ".lock"
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".part"
# A temp file this old among the objects was left by a crash, not a write.
STALE_TEMP_SECONDS = 3600.0


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

    Nothing but the objects is kept among them, so any reader of the folder
    (a DuckDB glob of a tenant's folder, pyarrow's dataset) sees data files
    only: the lock file of the folder `<f>` and the temp files written for
    it are in `<root>/.locks/<f>/` (`.lock`, `.tmp-*.part`). A folder whose
    name starts with `.` is skipped by pyarrow's dataset discovery, and the
    rename from there into `<f>` stays within one file system.
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
        work = self._work_folder(target.parent)
        with self._lock_for(target.parent), _FileLock(work / LOCK_NAME):
            current = self.get(path)
            if (current[1] if current else None) != expected:
                return False
            _write_atomically(target, data, work)
        return True

    def list(self, prefix: str) -> list[str]:
        """Every file below `prefix` (lock files and temp files left out)."""
        base = self.root / prefix if prefix else self.root
        return sorted(p.relative_to(self.root).as_posix() for p in _files(base))

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
        work = self._work_folder(target.parent)
        with self._lock_for(target.parent), _FileLock(work / LOCK_NAME):
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

    def remove_leftovers(self, tops: Callable[[str], bool], *, empty_folders: bool) -> int:
        """Remove what versions before `.locks` left among the objects, in
        the top folders whose names `tops` accepts: lock files no writer
        holds, temp files older than `STALE_TEMP_SECONDS`, and with
        `empty_folders` every folder left empty, deepest first. Returns how
        many files went. Objects are never touched: a folder is
        only removed by `rmdir`, which fails while it holds anything.

        Safe beside writers of this version (they keep nothing there) and
        beside one writer of an older version (one that loses its folder
        fails that write and retries it); stop older versions first when
        several may write the same hour, as the lake's move asks anyway.
        """
        removed = 0
        try:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.startswith(".") and tops(name):
                removed += _remove_leftovers(self.root / name, empty_folders=empty_folders)
        return removed

    def _work_folder(self, folder: Path) -> Path:
        """Where the lock and temp files of `folder` (below the root) live,
        created if missing: the same path below `<root>/.locks`."""
        work = self.root / WORK_FOLDER / folder.relative_to(self.root)
        private_folder(work)
        return work

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


def _write_atomically(target: Path, data: bytes, work: Path) -> None:
    """Temp file in `work` (on the target's file system), fsync, rename over
    the target, fsync the target's folder: a crash at any point leaves the
    old file or the new one (and at worst a temp file in `work`)."""
    fd, temp = tempfile.mkstemp(dir=work, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
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


def _remove_leftovers(top: Path, *, empty_folders: bool) -> int:
    """`LocalObjects.remove_leftovers` for one top folder."""
    removed = 0
    stale = time.time() - STALE_TEMP_SECONDS
    for folder, _subfolders, names in os.walk(top, topdown=False):
        for name in names:
            path = Path(folder, name)
            if name == LOCK_NAME:
                removed += _remove_free_lock(path)
            elif name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < stale:
                        path.unlink()
                        removed += 1
        if empty_folders:
            with contextlib.suppress(OSError):  # not empty (or gone): it stays
                os.rmdir(folder)
    return removed


def _remove_free_lock(path: Path) -> int:
    """Unlink the lock file `path` unless a writer holds it; 1 if it went."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0  # a writer is inside: left for the next run
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return 1


def _holds_a_file(folder: Path) -> bool:
    """Whether an object is below `folder` (a folder whose files were all
    moved away may still hold an older version's lock files)."""
    return any(True for _ in _files(folder))


def _files(base: Path) -> Iterator[Path]:
    """The objects below `base`: every file, but none whose name or folder
    starts with `.` (lock and temp files, `.locks`). Empty if `base` is missing."""
    for folder, subfolders, names in os.walk(base, onerror=_raise_unavailable):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in names:
            if not name.startswith("."):
                yield Path(folder, name)


def _raise_unavailable(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):  # a missing folder holds nothing
        raise Unavailable(f"cannot list {exc.filename}: {exc.strerror}") from None


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
