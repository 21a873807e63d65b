"""The signal store: versioned, sharded Parquet with a quarantine table, and its reader."""

from kmerl.signals.layout import SourceLayout
from kmerl.signals.manifest import SignalManifest
from kmerl.signals.reader import SignalStore, StoreItem

__all__ = ["SignalManifest", "SignalStore", "SourceLayout", "StoreItem"]
