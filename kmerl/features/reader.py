"""Reading the feature store by row without loading it whole.

Like the signal store's reader, each rows file's fixed-shape columns are copied
once into uncompressed ``.npy`` files beside the store and memory-mapped: a batch
read is then a gather from the page cache, far cheaper than a training step, and
the same files serve every DataLoader worker and every DDP process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from upath import UPath

from kmerl.features.layout import FeatureLayout
from kmerl.features.manifest import FeatureManifest
from kmerl.features.schema import DENSE_COLUMNS
from kmerl.npy_cache import dense, mapped
from kmerl.storage import StorePath, parquet_file, read_parquet


@dataclass(frozen=True, slots=True)
class EntityTable:
    entity_ids: tuple[str, ...]
    names: tuple[str, ...]
    embeddings: np.ndarray  # (entities, text_dim) float32, L2-normalised


class FeatureSplit:
    """The rows of one split, addressable by position across its files."""

    def __init__(self, layout: FeatureLayout, split: str, files: list[tuple[str, int]]) -> None:
        self.layout = layout
        self.split = split
        self._keys = [key for key, _ in files]
        self._offsets = np.concatenate([[0], np.cumsum([rows for _, rows in files])]).astype(np.int64)
        self._maps: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getstate__(self) -> dict[str, object]:
        # Memory maps do not cross process boundaries (DataLoader workers, spawn).
        return {"layout": self.layout, "split": self.split, "_keys": self._keys, "_offsets": self._offsets, "_maps": {}}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    @property
    def files(self) -> list[UPath]:
        return [self.layout.rows_file(self.split, key) for key in self._keys]

    def rows(self, positions: np.ndarray, columns: tuple[str, ...] = DENSE_COLUMNS) -> dict[str, np.ndarray]:
        """Dense columns of the rows at ``positions`` (any order, repeats allowed), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        if not self._keys:
            raise IndexError(f"the {self.split} split has no rows")
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"positions outside the {self.split} split (0..{len(self) - 1})")
        file_of = np.searchsorted(self._offsets, positions, side="right") - 1
        files = np.unique(file_of)
        out: dict[str, np.ndarray] = {}
        for column in columns:
            first = self._mapped(0, column)
            result = np.empty((len(positions), *first.shape[1:]), dtype=first.dtype)
            for file in files:
                selected = np.flatnonzero(file_of == file)
                # Sorted rows read the map front to back; results go back to the asked order.
                order = np.argsort(positions[selected], kind="stable")
                rows = positions[selected][order] - self._offsets[file]
                result[selected[order]] = self._mapped(int(file), column)[rows]
            out[column] = result
        return out

    def column(self, column: str) -> np.ndarray:
        """A whole dense column (small ones: lead_mask, has_report, entities) in split order."""
        return np.concatenate([np.asarray(self._mapped(f, column)) for f in range(len(self._keys))])

    def metadata(self, columns: list[str] | None = None) -> pl.DataFrame:
        """Non-signal columns of every row, in split order (the signal is never read)."""
        wanted = columns or ["record_id", "source", "split", "report", "labels", "has_report"]
        if not self._keys:
            return pl.DataFrame(schema=dict.fromkeys(wanted, pl.String))
        return pl.concat([pl.DataFrame(read_parquet(path, columns=wanted)) for path in self.files])

    def warm(self) -> None:
        """Build every memory-mapped copy now instead of on first access."""
        for file in range(len(self._keys)):
            for column in DENSE_COLUMNS:
                self._mapped(file, column)

    def _mapped(self, file: int, column: str) -> np.ndarray:
        if (file, column) not in self._maps:
            key = self._keys[file]
            rows_file = parquet_file(self.layout.rows_file(self.split, key))
            self._maps[(file, column)] = mapped(rows_file, column, self.layout.cache_file(self.split, key, column))
        return self._maps[(file, column)]


class FeatureStore:
    """One version of the feature store: its splits and its entity table."""

    def __init__(self, layout: FeatureLayout, manifest: FeatureManifest) -> None:
        self.layout = layout
        self.manifest = manifest
        self._splits: dict[str, FeatureSplit] = {}

    @classmethod
    def open(cls, root: StorePath | str, version: str | None = None) -> FeatureStore:
        layout = FeatureLayout(root)
        return cls(layout, layout.versions.load(version))

    @property
    def version(self) -> str:
        return self.manifest.version

    def split(self, name: str) -> FeatureSplit:
        if name not in self._splits:
            self._splits[name] = FeatureSplit(self.layout, name, self.manifest.split_files(name))
        return self._splits[name]

    def entities(self) -> EntityTable:
        table = read_parquet(self.layout.entities_file(self.manifest.entities_key))
        return EntityTable(
            tuple(table.column("entity_id").to_pylist()),
            tuple(table.column("name").to_pylist()),
            np.array(dense(table.column("embedding"))),  # a writable copy, not Arrow's read-only buffer
        )

    def quarantine(self) -> pl.DataFrame:
        """Records and entity mentions of this version that were left out, with the reason."""
        keys = [self.manifest.mentions_quarantine_key, *(c.key for c in self.manifest.chunks)]
        return pl.concat([pl.DataFrame(read_parquet(self.layout.quarantine_file(key))) for key in keys])
