"""One way to keep versions of a store: a manifest per version and an atomically switched pointer.

    <root>/versions/<version>.json   the manifest of one version: what to read, and where it came from
    <root>/CURRENT                   the version readers get by default
    <root>/cache/                    memory-mappable local copies (in the user's cache for object stores)

Every store of the pipeline keeps its versions this way: each source of the signal
store, the feature store, each source's extracted knowledge and the training runs.
Their content files are named by what determines them, so versions share unchanged
files and earlier versions stay readable; a version is published only once everything
it lists is written, manifest first, then ``CURRENT``, both by atomic writes.
``root`` is a local folder or any fsspec URL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from upath import UPath

from kmerl.atomic import write_text_atomic
from kmerl.storage import StorePath, is_local, local_cache_dir, store_path


class Manifest(BaseModel):
    """What every version manifest holds; each store adds what reading that version needs."""

    model_config = ConfigDict(frozen=True)

    version: str
    created_at: datetime


ManifestT = TypeVar("ManifestT", bound=Manifest)


class VersionedStore(Generic[ManifestT]):
    """The published versions of the store under ``root``."""

    def __init__(self, root: StorePath | str, manifest_type: type[ManifestT]) -> None:
        self.root = store_path(root)
        self.manifest_type = manifest_type

    def __repr__(self) -> str:
        return f"VersionedStore({str(self.root)!r}, {self.manifest_type.__name__})"

    @property
    def versions_dir(self) -> UPath:
        return self.root / "versions"

    @property
    def current_pointer(self) -> UPath:
        return self.root / "CURRENT"

    @property
    def cache(self) -> Path:
        """Memory-mapped copies must be local: beside the store, or in the user's cache."""
        root = self.root
        return Path(root, "cache") if is_local(root) else local_cache_dir(root)

    def manifest_file(self, version: str) -> UPath:
        return self.versions_dir / f"{version}.json"

    def publish(self, manifest: ManifestT) -> None:
        """Write the manifest (once per version) and switch ``CURRENT`` to it."""
        path = self.manifest_file(manifest.version)
        if not path.exists():
            write_text_atomic(path, manifest.model_dump_json(indent=2))
        write_text_atomic(self.current_pointer, manifest.version + "\n")

    def current(self) -> str | None:
        """The version ``CURRENT`` names, or None before the first publication."""
        if not self.current_pointer.exists():
            return None
        return self.current_pointer.read_text().strip()

    def load(self, version: str | None = None) -> ManifestT:
        """The manifest of ``version``, or of the current one."""
        version = version or self.current()
        if version is None:
            raise FileNotFoundError(f"nothing is published under {self.root}")
        path = self.manifest_file(version)
        if not path.exists():
            raise FileNotFoundError(f"version {version} is not published under {self.root}")
        return self.manifest_type.model_validate_json(path.read_text())

    def history(self) -> list[ManifestT]:
        """Every published version, oldest first."""
        manifests = [self.manifest_type.model_validate_json(p.read_text()) for p in self.versions_dir.glob("*.json")]
        return sorted(manifests, key=lambda manifest: manifest.created_at)


def published_stores(parent: StorePath | str) -> list[str]:
    """Names of the folders under ``parent`` that hold a published store (one per source)."""
    return sorted(path.parent.name for path in store_path(parent).glob("*/CURRENT"))
