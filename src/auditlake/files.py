"""Audit data is private to the service user: folders 0700, files 0600.

Modes are set where files and folders are made, whatever the process umask,
so a command that writes (the server, `keys create`, `poll`) never leaves
data others can read. Existing folders and files keep the mode they have.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def private_folder(path: Path) -> None:
    """Create `path` and any missing parents with FOLDER_MODE."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another writer
            continue
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask


def private_file(path: Path) -> None:
    """Create `path` empty with FILE_MODE if it does not exist (a database
    file before SQLite opens it: SQLite gives its -wal and -shm files the
    database file's mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
