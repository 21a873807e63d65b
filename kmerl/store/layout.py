"""Where a source's store lives on disk.

    <root>/<source>/signals/<key>.parquet      signal rows of one shard
    <root>/<source>/quarantine/<key>.parquet   records of that shard that were rejected
    <root>/<source>/versions/<version>.json    manifest: the shards of one version
    <root>/<source>/CURRENT                    the version readers get by default
    <root>/<source>/cache/<key>.npy            memory-mappable copy of a shard's signals

Shards are content-addressed (their key hashes inputs, configuration and code
version) and immutable, so versions share unchanged shards and earlier versions
stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kmerl.storage import is_local, local_cache_dir, store_path


@dataclass(frozen=True, slots=True)
class SourceLayout:
    """Paths of one source's store under ``root`` (a local folder or an fsspec URL)."""

    root: Path
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", store_path(self.root))

    @property
    def base(self) -> Path:
        return self.root / self.source

    @property
    def signals(self) -> Path:
        return self.base / "signals"

    @property
    def quarantine(self) -> Path:
        return self.base / "quarantine"

    @property
    def versions(self) -> Path:
        return self.base / "versions"

    @property
    def cache(self) -> Path:
        """Memory-mapped copies must be local: beside the store, or in the user's cache."""
        return self.base / "cache" if is_local(self.base) else local_cache_dir(self.base)

    @property
    def current_pointer(self) -> Path:
        return self.base / "CURRENT"

    def signal_file(self, key: str) -> Path:
        return self.signals / f"{key}.parquet"

    def quarantine_file(self, key: str) -> Path:
        return self.quarantine / f"{key}.parquet"

    def manifest_file(self, version: str) -> Path:
        return self.versions / f"{version}.json"

    def mmap_file(self, key: str) -> Path:
        return self.cache / f"{key}.npy"

    def shard_complete(self, key: str) -> bool:
        """Quarantine is written first, signals last: the signal file marks completion."""
        return self.quarantine_file(key).exists() and self.signal_file(key).exists()
