"""Where the feature store lives.

    <root>/rows/<split>/<key>.parquet    training rows of one chunk (one signal-store shard) and split
    <root>/chunks/<key>.json             a finished chunk and its counts (written last: marks completion)
    <root>/entities/<key>.parquet        the target entities: entity_id, name, name embedding
    <root>/quarantine/<key>.parquet      records and entity mentions left out, with the reason
    <root>/versions/<version>.json       manifest: the files of one version
    <root>/CURRENT                       the version readers get by default
    <root>/cache/<split>-<key>.<column>.npy   memory-mappable copy of one column of a rows file

Every file but the cache is named by the hash of what determines its content, so
versions share unchanged chunks and earlier versions stay readable. Versions are
kept as every store keeps them (:mod:`kmerl.versioned_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from kmerl.features.manifest import FeatureManifest
from kmerl.storage import StorePath, store_path
from kmerl.versioned_store import VersionedStore


@dataclass(frozen=True, slots=True)
class FeatureLayout:
    """Paths of the feature store under ``root`` (a local folder or an fsspec URL)."""

    root: UPath

    def __init__(self, root: StorePath | str) -> None:
        object.__setattr__(self, "root", store_path(root))

    @property
    def versions(self) -> VersionedStore[FeatureManifest]:
        return VersionedStore(self.root, FeatureManifest)

    @property
    def chunks(self) -> UPath:
        return self.root / "chunks"

    @property
    def entities(self) -> UPath:
        return self.root / "entities"

    @property
    def quarantine(self) -> UPath:
        return self.root / "quarantine"

    def rows_dir(self, split: str) -> UPath:
        return self.root / "rows" / split

    def rows_file(self, split: str, key: str) -> UPath:
        return self.rows_dir(split) / f"{key}.parquet"

    def chunk_file(self, key: str) -> UPath:
        return self.chunks / f"{key}.json"

    def entities_file(self, key: str) -> UPath:
        return self.entities / f"{key}.parquet"

    def quarantine_file(self, key: str) -> UPath:
        return self.quarantine / f"{key}.parquet"

    def cache_file(self, split: str, key: str, column: str) -> Path:
        return self.versions.cache / f"{split}-{key}.{column}.npy"
