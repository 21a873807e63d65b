"""Atomic file writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kmerl.storage import StorePath, is_local

TEMP_MARKER = ".tmp-"


@contextmanager
def atomic_write(path: StorePath, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that readers see the old content or the new, never part.

    Locally: write a hidden temporary file next to ``path`` and rename it into place
    (``os.replace`` is atomic on one POSIX file system); on error it is removed.
    While it exists this process holds an exclusive lock on it, which the kernel
    drops when the process dies: that is how :func:`remove_stale_temp_files` tells
    abandoned files from files still being written. For object stores the file is
    written locally first and uploaded in one call once complete, so nothing is
    published if writing fails.
    """
    if not is_local(path):
        with tempfile.NamedTemporaryFile(mode, prefix="kmerl-upload-") as handle:
            yield handle
            handle.flush()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.fs.put_file(handle.name, path.path)
        return
    local = Path(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    temp = local.with_name(f".{local.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")
    try:
        with temp.open(mode) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield handle
            handle.flush()
            os.replace(temp, local)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomic(path: StorePath, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def remove_stale_temp_files(directory: StorePath) -> int:
    """Delete temporaries left by killed writers; return how many were removed.

    A temporary still locked by a live writer is left alone, so a concurrent
    writer to the same folder is never disturbed.
    """
    if not is_local(directory) or not directory.exists():
        return 0  # object stores have no temporaries
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
def atomic_directory(path: StorePath, staging: StorePath, written_last: str) -> Iterator[Path]:
    """Yield an empty local folder; on success it becomes ``path``, complete or not at all.

    Locally the folder is made under ``staging`` (same file system, outside any glob
    readers use) and renamed into place. While writing, this process holds a lock
    inside it (see :func:`remove_stale_directories`). If ``path`` already exists it
    was written by an identical earlier run and is kept. Its files are made read-only
    (0444) before the rename: a published folder is never edited, only superseded, and
    a reader's tool that tries to write into it is refused. On object stores, which
    have no folders to rename, the files are uploaded one by one with
    ``written_last`` last: readers count a folder as complete once that file exists.
    """
    if not is_local(path):
        with tempfile.TemporaryDirectory(prefix="kmerl-upload-") as local:
            yield Path(local)
            names = sorted(p.name for p in Path(local).iterdir())
            names.sort(key=lambda name: name == written_last)
            for name in names:
                path.fs.put_file(str(Path(local) / name), (path / name).path)
        return
    if not is_local(staging):
        raise ValueError(f"staging folder {staging} is not on the local file system of {path}")
    staging.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = staging / f"{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}"
    temp.mkdir()
    lock = temp / _DIRECTORY_LOCK
    try:
        with lock.open("wb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield temp
            for written in temp.iterdir():
                if written != lock:
                    written.chmod(0o444)
            try:
                os.rename(temp, path)  # the lock travels along and is removed below
            except OSError:
                if not path.is_dir():
                    raise
        (path / _DIRECTORY_LOCK).unlink(missing_ok=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def remove_stale_directories(staging: StorePath) -> int:
    """Delete folders left in ``staging`` by killed writers; return how many."""
    if not is_local(staging) or not staging.exists():
        return 0  # object stores have no staging folders
    removed = 0
    for folder in staging.iterdir():
        if folder.is_dir() and TEMP_MARKER in folder.name and _abandoned(folder / _DIRECTORY_LOCK):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


_DIRECTORY_LOCK = ".writer.lock"
