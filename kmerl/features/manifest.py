"""What a feature store version holds: its chunks, their counts, and what built them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from kmerl.hashing import stable_hash
from kmerl.versioned_store import Manifest


class ChunkEntry(BaseModel):
    """One signal-store shard turned into rows: how many records went where."""

    model_config = ConfigDict(frozen=True)

    key: str
    records_in: int
    rows: dict[str, int] = Field(description="Rows written per split.")
    quarantined: int
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)


class MentionCounts(BaseModel):
    """Accounting of the extracted (record, entity) rows: in == positive + not_positive + quarantined."""

    model_config = ConfigDict(frozen=True)

    mentions_in: int
    positive: int  # status present
    not_positive: int  # status absent or uncertain
    quarantined: int
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)


class FeatureManifest(Manifest):
    """Everything needed to read one version of the feature store, and its provenance."""

    format: int = 1
    code_version: str
    text_encoder: str
    text_dim: int
    fs: int
    samples: int
    signal_dtype: str
    signal_store_versions: dict[str, str]
    vocabulary_key: str
    entities_key: str
    n_entities: int
    mentions: MentionCounts
    mentions_quarantine_key: str
    chunks: tuple[ChunkEntry, ...]

    @property
    def records_in(self) -> int:
        return sum(c.records_in for c in self.chunks)

    @property
    def rows(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for chunk in self.chunks:
            total.update(chunk.rows)
        return dict(sorted(total.items()))

    @property
    def quarantined(self) -> int:
        return sum(c.quarantined for c in self.chunks)

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for chunk in self.chunks:
            total.update(chunk.quarantine_reasons)
        return dict(total.most_common())

    def split_files(self, split: str) -> list[tuple[str, int]]:
        """(chunk key, rows) of every rows file of ``split``, in store order."""
        return [(c.key, c.rows[split]) for c in self.chunks if c.rows.get(split)]


def new_manifest(**fields: object) -> FeatureManifest:
    """The version id hashes the content description (not the time, nor which signal-store
    versions held the records), so equal inputs give equal versions."""
    draft = FeatureManifest.model_validate(fields | {"version": "", "created_at": datetime.now(UTC)})
    identity = draft.model_dump(mode="json", exclude={"version", "created_at", "signal_store_versions"})
    return draft.model_copy(update={"version": stable_hash(identity)})
