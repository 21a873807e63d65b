"""Where the feature store lives on disk.

    <root>/rows/<split>/<key>.parquet    training rows of one chunk (one signal-store shard) and split
    <root>/chunks/<key>.json             a finished chunk and its counts (written last: marks completion)
    <root>/entities/<key>.parquet        the vocabulary: entity_id, name, name embedding
    <root>/quarantine/<key>.parquet      records and entity mentions left out, with the reason
    <root>/versions/<version>.json       manifest: the files of one version
    <root>/CURRENT                       the version readers get by default
    <root>/cache/<split>-<key>.<column>.npy   memory-mappable copy of one column of a rows file

Every file but the cache is named by the hash of what determines its content, so
versions share unchanged chunks and earlier versions stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kmerl.storage import is_local, local_cache_dir, store_path


@dataclass(frozen=True, slots=True)
class FeatureLayout:
    """Paths of the feature store under ``root`` (a local folder or an fsspec URL)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", store_path(self.root))

    @property
    def chunks(self) -> Path:
        return self.root / "chunks"

    @property
    def entities(self) -> Path:
        return self.root / "entities"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def cache(self) -> Path:
        """Memory-mapped copies must be local: beside the store, or in the user's cache."""
        return self.root / "cache" if is_local(self.root) else local_cache_dir(self.root)

    @property
    def current_pointer(self) -> Path:
        return self.root / "CURRENT"

    def rows_dir(self, split: str) -> Path:
        return self.root / "rows" / split

    def rows_file(self, split: str, key: str) -> Path:
        return self.rows_dir(split) / f"{key}.parquet"

    def chunk_file(self, key: str) -> Path:
        return self.chunks / f"{key}.json"

    def entities_file(self, key: str) -> Path:
        return self.entities / f"{key}.parquet"

    def quarantine_file(self, key: str) -> Path:
        return self.quarantine / f"{key}.parquet"

    def manifest_file(self, version: str) -> Path:
        return self.versions / f"{version}.json"

    def cache_file(self, split: str, key: str, column: str) -> Path:
        return self.cache / f"{split}-{key}.{column}.npy"
