"""Random access to signal store versions without loading them whole."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from upath import UPath

from kmerl.npy_cache import dense, mapped
from kmerl.signals.layout import SourceLayout
from kmerl.signals.manifest import SignalManifest
from kmerl.signals.schema import METADATA_COLUMNS, METADATA_FIELDS, SIGNAL_COLUMN
from kmerl.storage import StorePath, arrow_location, parquet_file, read_parquet
from kmerl.versioned_store import published_stores

Access = Literal["mmap", "parquet"]
_INDEX_COLUMNS = ["record_id", "split", "lead_mask"]


@dataclass(frozen=True, slots=True)
class _Shard:
    layout: SourceLayout
    key: str
    rows: int

    @property
    def signal_file(self) -> UPath:
        return self.layout.signal_file(self.key)


@dataclass(frozen=True, slots=True)
class StoreItem:
    record_id: str
    signal: np.ndarray  # (12, samples); NaN where there is no data
    lead_mask: np.ndarray  # (12,) bool


class SignalStore:
    """The signals of one or more sources, addressable by position or record id.

    ``access="mmap"`` (the default, what a training loader wants) copies each
    shard's signals once into an uncompressed ``.npy`` file beside the store and
    memory-maps it, so a random read is a memory copy. ``access="parquet"`` reads
    the row group holding the record from the Parquet shard, keeping a few decoded
    groups; it needs no extra disk space.
    """

    def __init__(
        self,
        manifests: list[tuple[SourceLayout, SignalManifest]],
        access: Access = "mmap",
        cache_dir: Path | None = None,
        cached_row_groups: int = 8,
    ) -> None:
        self.manifests = [manifest for _, manifest in manifests]
        self.access = access
        self._cache_dir = cache_dir
        self._shards = [_Shard(layout, s.key, s.ingested) for layout, m in manifests for s in m.shards]
        self._index = self._build_index()
        self._record_ids: list[str] = self._index.get_column("record_id").to_list()
        self._lead_masks = self._index.get_column("lead_mask").to_numpy(writable=False).reshape(-1, 12).astype(bool)
        self._shard_of = self._index.get_column("shard").to_numpy()
        self._row_of = self._index.get_column("row").to_numpy()
        self._row_by_id: dict[str, int] | None = None
        self._arrays: dict[int, np.ndarray] = {}
        self._parquet: dict[int, pq.ParquetFile] = {}
        self._row_groups: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cached_row_groups = cached_row_groups

    @classmethod
    def open(
        cls,
        root: StorePath | str,
        sources: list[str] | None = None,
        versions: dict[str, str] | None = None,
        access: Access = "mmap",
        cache_dir: Path | None = None,
    ) -> SignalStore:
        """Open the current version of each source under ``root`` (or the given ones)."""
        versions = versions or {}
        layouts = [SourceLayout(root, source) for source in (sources or published_stores(root))]
        manifests = [(layout, layout.versions.load(versions.get(layout.source))) for layout in layouts]
        return cls(manifests, access=access, cache_dir=cache_dir)

    def __len__(self) -> int:
        return self._index.height

    def __getitem__(self, position: int) -> StoreItem:
        return StoreItem(self._record_ids[position], self.signal(position), self._lead_masks[position])

    def __getstate__(self) -> dict[str, object]:
        # Open files and maps do not cross process boundaries (DataLoader workers).
        return dict(self.__dict__, _arrays={}, _parquet={}, _row_groups=OrderedDict())

    @property
    def index(self) -> pl.DataFrame:
        """record_id, split, lead_mask, shard and row of every record, in store order."""
        return self._index

    @property
    def record_ids(self) -> list[str]:
        return self._record_ids

    @property
    def lead_masks(self) -> np.ndarray:
        """(records, 12) bool: which leads carry signal."""
        return self._lead_masks

    def position(self, record_id: str) -> int:
        if self._row_by_id is None:
            self._row_by_id = {rid: i for i, rid in enumerate(self._record_ids)}
        return self._row_by_id[record_id]

    def metadata(self, columns: list[str] | None = None) -> pl.LazyFrame:
        """Every column but the signal, lazily, for filtering and joins."""
        # The dataset schema leaves the signal column out, so it is never read.
        locations = [arrow_location(s.signal_file) for s in self._shards]
        filesystem = locations[0][1] if locations else None
        dataset = ds.dataset(
            [location for location, _ in locations],
            format="parquet",
            schema=pa.schema(METADATA_FIELDS),
            filesystem=filesystem,
        )
        return pl.scan_pyarrow_dataset(dataset).select(columns or list(METADATA_COLUMNS))

    def signal(self, position: int) -> np.ndarray:
        shard, row = self._locate(position)
        if self.access == "mmap":
            return np.array(self._mapped(shard)[row])
        return self._from_parquet(shard, row)

    def warm(self) -> None:
        """Build every memory-mapped copy now instead of on first access."""
        for shard in range(len(self._shards)):
            self._mapped(shard)

    def _build_index(self) -> pl.DataFrame:
        frames = []
        for number, shard in enumerate(self._shards):
            table = read_parquet(shard.signal_file, columns=_INDEX_COLUMNS)
            frames.append(
                pl.DataFrame(table).with_columns(
                    pl.lit(number, pl.Int32).alias("shard"), pl.int_range(table.num_rows, dtype=pl.Int32).alias("row")
                )
            )
        if not frames:
            schema = {"record_id": pl.String(), "split": pl.String(), "lead_mask": pl.Array(pl.Boolean(), 12)}
            return pl.DataFrame(schema=schema | {"shard": pl.Int32(), "row": pl.Int32()})
        return pl.concat(frames)

    def _locate(self, position: int) -> tuple[int, int]:
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} is outside the store (0..{len(self) - 1})")
        return int(self._shard_of[position]), int(self._row_of[position])

    def _mapped(self, shard_number: int) -> np.ndarray:
        if shard_number not in self._arrays:
            shard = self._shards[shard_number]
            path = self._cache_dir / f"{shard.key}.npy" if self._cache_dir else shard.layout.mmap_file(shard.key)
            self._arrays[shard_number] = mapped(parquet_file(shard.signal_file), SIGNAL_COLUMN, path)
        return self._arrays[shard_number]

    def _from_parquet(self, shard_number: int, row: int) -> np.ndarray:
        if shard_number not in self._parquet:
            self._parquet[shard_number] = parquet_file(self._shards[shard_number].signal_file)
        parquet = self._parquet[shard_number]
        group_rows = parquet.metadata.row_group(0).num_rows
        group, offset = divmod(row, group_rows)
        key = (shard_number, group)
        if key not in self._row_groups:
            self._row_groups[key] = dense(parquet.read_row_group(group, columns=[SIGNAL_COLUMN]).column(SIGNAL_COLUMN))
            if len(self._row_groups) > self._cached_row_groups:
                self._row_groups.popitem(last=False)
        self._row_groups.move_to_end(key)
        return np.array(self._row_groups[key][offset])
