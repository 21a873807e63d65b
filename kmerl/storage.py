"""Where stores live: a local folder by default, or any fsspec URL (s3://, gs://, ...).

Store code handles paths as :class:`upath.UPath`, which behaves like
:class:`pathlib.Path` for local folders and object stores alike; the few
operations that differ (atomic rename, memory maps, Arrow file systems) ask
:func:`is_local`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from typing_extensions import TypeIs
from upath import UPath

# A store location: a local folder (a Path, or UPath's local flavour, also a Path) or an fsspec URL.
StorePath = UPath | Path


def store_path(location: StorePath | str) -> UPath:
    """A path or URL as a UPath; ``file://`` URLs become plain local paths."""
    path = UPath(location)
    if path.protocol == "file":
        return UPath(path.path)
    return path


def is_local(path: StorePath) -> TypeIs[Path]:
    """A local path (whose type checkers then know it is a Path); otherwise an fsspec UPath."""
    return isinstance(path, Path)


def local_cache_dir(path: UPath) -> Path:
    """Where local copies of a remote store's files go (memory maps need a local file)."""
    return Path.home() / ".cache" / "kmerl" / path.protocol / path.path.strip("/")


def arrow_location(path: StorePath) -> tuple[str, pafs.FileSystem | None]:
    """What pyarrow needs to open ``path``: native I/O for local files, the fsspec
    file system wrapped for pyarrow otherwise."""
    if is_local(path):
        return os.fspath(path), None
    return path.path, pafs.PyFileSystem(pafs.FSSpecHandler(path.fs))


def read_parquet(path: StorePath, columns: list[str] | None = None) -> pa.Table:
    location, filesystem = arrow_location(path)
    return pq.read_table(location, columns=columns, filesystem=filesystem)


def parquet_file(path: StorePath) -> pq.ParquetFile:
    """An open Parquet file; local files are memory-mapped."""
    location, filesystem = arrow_location(path)
    if filesystem is None:
        return pq.ParquetFile(location, memory_map=True)
    return pq.ParquetFile(filesystem.open_input_file(location))
