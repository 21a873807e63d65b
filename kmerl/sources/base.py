"""What every source adapter provides."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kmerl.records import RecordRef, Rejection, Split
from kmerl.splits import split_for
from kmerl.wfdb_io import WfdbHeader


class SourceRefused(ValueError):
    """A source that cannot be ingested as configured; the message says what to change."""


class SourceAdapter(BaseModel):
    """A configured data source: lists its records and completes them from headers.

    Adapters are pydantic models so that one object is both the user's
    configuration and the (picklable) code the ingest workers run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Source id: prefix of record ids and partition key.")
    root: Path = Field(description="Folder holding the source in its original layout.")
    val_fraction: float = Field(0.1, ge=0, le=1, description="Share of patients hashed into validation.")
    test_fraction: float = Field(0.1, ge=0, le=1, description="Share of patients hashed into test.")
    slices: int = Field(
        1, ge=1, description="Partitions to split the source into (by hash of record id), so one slice can be re-run."
    )

    kind: str

    def partition_keys(self) -> list[str]:
        """``name`` for an unsliced source, ``name.000`` .. for a sliced one."""
        if self.slices == 1:
            return [self.name]
        return [f"{self.name}.{index:03d}" for index in range(self.slices)]

    def owns(self, partition: str, record_id: str) -> bool:
        """Whether ``record_id`` belongs to ``partition`` (always, when unsliced)."""
        if self.slices == 1:
            return True
        return f"{self.name}.{slice_of(record_id, self.slices):03d}" == partition

    def iter_records(self, target_fs: int) -> Iterator[RecordRef | Rejection]:
        """Every record of the source, sorted by record id, without reading samples."""
        raise NotImplementedError

    def count_records(self) -> int:
        """How many records ``iter_records`` will list (for progress and ETA)."""
        raise NotImplementedError

    def count_partition(self, partition: str, target_fs: int) -> int:
        """Records in one partition: exact, by listing when the source is sliced."""
        if self.slices == 1:
            return self.count_records()
        return sum(self.owns(partition, item.record_id) for item in self.iter_records(target_fs))

    def check(self) -> None:
        """Refuse the whole source before ingest, with a reason naming what to fix
        (e.g. labels that map to no code); most sources have nothing to check."""

    def complete(self, ref: RecordRef, header: WfdbHeader) -> RecordRef:
        """Fill in what only the header knows (runs in the ingest workers)."""
        return ref

    def hashed_split(self, key: str) -> Split:
        return split_for(key, self.val_fraction, self.test_fraction)

    def record_id(self, native_id: str) -> str:
        return f"{self.name}/{native_id}"

    def iter_files(self) -> Iterator[Path]:
        """Every file under the root in a stable order (for change detection)."""
        return walk_files(self.root)


def slice_of(record_id: str, slices: int) -> int:
    return int.from_bytes(hashlib.blake2b(record_id.encode(), digest_size=8).digest(), "big") % slices


def walk_files(root: Path) -> Iterator[Path]:
    """Files under ``root``, depth first, sorted by name, streamed (no full listing)."""
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for file_name in sorted(files):
            yield Path(directory, file_name)


def iter_header_paths(root: Path) -> Iterator[Path]:
    """WFDB record paths (``.hea`` without extension) under ``root``, sorted."""
    for path in walk_files(root):
        if path.suffix == ".hea":
            yield path.with_suffix("")


class FolderSource(SourceAdapter):
    """A source whose records are simply the WFDB headers under its root."""

    def count_records(self) -> int:
        return sum(1 for _ in iter_header_paths(self.root))

    def iter_records(self, target_fs: int) -> Iterator[RecordRef | Rejection]:
        for record_path in iter_header_paths(self.root):
            relative = record_path.relative_to(self.root).as_posix()
            yield RecordRef(
                record_id=self.record_id(relative),
                source=self.name,
                native_id=relative,
                record_path=record_path,
                relative_path=relative,
                split=self.hashed_split(relative),
            )
