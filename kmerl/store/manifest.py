"""Store versions: a manifest per version, and an atomically switched pointer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kmerl.atomic import write_text_atomic
from kmerl.hashing import stable_hash
from kmerl.preprocess import PreprocessConfig
from kmerl.store.layout import SourceLayout


class ShardEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    records_in: int
    ingested: int
    quarantined: int
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)


class StoreManifest(BaseModel):
    """Everything needed to read one version of one source's store, and its provenance."""

    model_config = ConfigDict(frozen=True)

    format: int = 1
    source: str
    source_kind: str
    version: str
    code_version: str
    preprocess: PreprocessConfig
    created_at: datetime
    shards: tuple[ShardEntry, ...]

    @property
    def records_in(self) -> int:
        return sum(s.records_in for s in self.shards)

    @property
    def ingested(self) -> int:
        return sum(s.ingested for s in self.shards)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.shards)

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for shard in self.shards:
            total.update(shard.quarantine_reasons)
        return dict(total.most_common())


def new_manifest(
    source: str, source_kind: str, code_version: str, preprocess: PreprocessConfig, shards: list[ShardEntry]
) -> StoreManifest:
    """The version id hashes what determines the content, so equal inputs give equal versions."""
    version = stable_hash(source, code_version, preprocess, [s.key for s in shards])
    return StoreManifest(
        source=source,
        source_kind=source_kind,
        version=version,
        code_version=code_version,
        preprocess=preprocess,
        created_at=datetime.now(UTC),
        shards=tuple(shards),
    )


def publish(layout: SourceLayout, manifest: StoreManifest) -> None:
    """Write the manifest (once per version) and switch CURRENT to it."""
    path = layout.manifest_file(manifest.version)
    if not path.exists():
        write_text_atomic(path, manifest.model_dump_json(indent=2))
    write_text_atomic(layout.current_pointer, manifest.version + "\n")


def load_manifest(layout: SourceLayout, version: str | None = None) -> StoreManifest:
    """The given version of a source's store, or the current one."""
    if version is None:
        if not layout.current_pointer.exists():
            raise FileNotFoundError(f"no store for source {layout.source!r} under {layout.root}")
        version = layout.current_pointer.read_text().strip()
    return StoreManifest.model_validate_json(layout.manifest_file(version).read_text())


def list_versions(layout: SourceLayout) -> list[StoreManifest]:
    """Every published version of a source, oldest first."""
    manifests = [StoreManifest.model_validate_json(p.read_text()) for p in layout.versions.glob("*.json")]
    return sorted(manifests, key=lambda m: m.created_at)


def store_sources(root: Path) -> list[str]:
    """Sources with a published store under ``root``."""
    return sorted(p.parent.name for p in root.glob("*/CURRENT"))
