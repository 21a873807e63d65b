"""Atomic file writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import fcntl
import os
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
