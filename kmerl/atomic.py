"""Atomic file writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARKER = ".tmp-"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; rename it into place on success.

    The temporary file lives in the same directory so ``os.replace`` is a rename on
    one file system (atomic on POSIX). On error it is removed. While it exists, this
    process holds an exclusive lock on it, which the kernel drops when the process
    dies: that is how :func:`remove_stale_temp_files` tells abandoned files from
    files still being written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")
    with temp.open("wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield temp
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


def remove_stale_temp_files(directory: Path) -> int:
    """Delete temporaries left by killed writers; return how many were removed.

    A temporary still locked by a live writer is left alone, so a concurrent
    writer to the same folder is never disturbed.
    """
    if not directory.exists():
        return 0
    removed = 0
    for path in directory.iterdir():
        if path.name.startswith(".") and TEMP_MARKER in path.name and _abandoned(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _abandoned(temp: Path) -> bool:
    try:
        with temp.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except FileNotFoundError:
        return False  # renamed into place or removed meanwhile
    return True


@contextmanager
def atomic_directory(path: Path, staging: Path) -> Iterator[Path]:
    """Yield an empty folder under ``staging``; on success rename it to ``path``.

    ``staging`` must be on the same file system and outside any glob readers
    use, so a half-written folder is never read. While writing, this process
    holds a lock inside the folder (see :func:`remove_stale_directories`). If
    ``path`` already exists, it was written by an identical earlier run and is
    kept.
    """
    staging.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = staging / f"{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}"
    temp.mkdir()
    lock = temp / _DIRECTORY_LOCK
    try:
        with lock.open("wb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield temp
            try:
                os.rename(temp, path)  # the lock travels along and is removed below
            except OSError:
                if not path.is_dir():
                    raise
        (path / _DIRECTORY_LOCK).unlink(missing_ok=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def remove_stale_directories(staging: Path) -> int:
    """Delete folders left in ``staging`` by killed writers; return how many."""
    if not staging.exists():
        return 0
    removed = 0
    for folder in staging.iterdir():
        if folder.is_dir() and TEMP_MARKER in folder.name and _abandoned(folder / _DIRECTORY_LOCK):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


_DIRECTORY_LOCK = ".writer.lock"
