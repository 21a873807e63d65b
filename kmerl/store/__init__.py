"""The signal store: versioned, sharded Parquet with a quarantine table, and its reader."""

from kmerl.store.layout import SourceLayout
from kmerl.store.manifest import StoreManifest, list_versions, load_manifest, store_sources
from kmerl.store.reader import SignalStore, StoreItem

__all__ = [
    "SignalStore",
    "SourceLayout",
    "StoreItem",
    "StoreManifest",
    "list_versions",
    "load_manifest",
    "store_sources",
]
