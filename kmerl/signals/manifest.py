"""What a signal store version holds: its shards, their counts, the preprocessing that wrote them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from kmerl.hashing import stable_hash
from kmerl.preprocess import PreprocessConfig
from kmerl.versioned_store import Manifest


class ShardEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    records_in: int
    ingested: int
    quarantined: int
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)


class SignalManifest(Manifest):
    """Everything needed to read one version of one source's store, and its provenance."""

    format: int = 1
    source: str
    source_kind: str
    code_version: str
    preprocess: PreprocessConfig
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
) -> SignalManifest:
    """The version id hashes what determines the content, so equal inputs give equal versions."""
    version = stable_hash(source, code_version, preprocess, [s.key for s in shards])
    return SignalManifest(
        source=source,
        source_kind=source_kind,
        version=version,
        code_version=code_version,
        preprocess=preprocess,
        created_at=datetime.now(UTC),
        shards=tuple(shards),
    )
