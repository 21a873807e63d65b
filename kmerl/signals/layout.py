"""Where a source's signal store lives.

    <root>/<source>/signals/<key>.parquet      signal rows of one shard
    <root>/<source>/quarantine/<key>.parquet   records of that shard that were rejected
    <root>/<source>/versions/<version>.json    manifest: the shards of one version
    <root>/<source>/CURRENT                    the version readers get by default
    <root>/<source>/cache/<key>.npy            memory-mappable copy of a shard's signals

Shards are content-addressed (their key hashes inputs, configuration and code
version) and immutable, so versions share unchanged shards and earlier versions
stay readable. Versions are kept as every store keeps them (:mod:`kmerl.versioned_store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from kmerl.signals.manifest import SignalManifest
from kmerl.storage import StorePath, store_path
from kmerl.versioned_store import VersionedStore


@dataclass(frozen=True, slots=True)
class SourceLayout:
    """Paths of one source's store under ``root`` (a local folder or an fsspec URL)."""

    root: UPath
    source: str

    def __init__(self, root: StorePath | str, source: str) -> None:
        object.__setattr__(self, "root", store_path(root))
        object.__setattr__(self, "source", source)

    @property
    def base(self) -> UPath:
        return self.root / self.source

    @property
    def versions(self) -> VersionedStore[SignalManifest]:
        return VersionedStore(self.base, SignalManifest)

    @property
    def signals(self) -> UPath:
        return self.base / "signals"

    @property
    def quarantine(self) -> UPath:
        return self.base / "quarantine"

    def signal_file(self, key: str) -> UPath:
        return self.signals / f"{key}.parquet"

    def quarantine_file(self, key: str) -> UPath:
        return self.quarantine / f"{key}.parquet"

    def mmap_file(self, key: str) -> Path:
        return self.versions.cache / f"{key}.npy"

    def shard_complete(self, key: str) -> bool:
        """Quarantine is written first, signals last: the signal file marks completion."""
        return self.quarantine_file(key).exists() and self.signal_file(key).exists()
