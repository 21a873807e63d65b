"""Extracted knowledge as training targets: the target entities and each record's positive ones.

The extraction stage delivers one row per (record, entity) with a status; training
wants, per record, the indices of the entities whose status is ``present``. Rows
that cannot be used (unknown record, unknown entity, invalid status) go to the
quarantine table with a reason and never stop the build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.extraction.schema import STATUSES
from kmerl.features.schema import STAGE_FEATURES
from kmerl.hashing import stable_hash
from kmerl.sources.label_tables import read_dx_mapping, read_scp_statements

# The query network learns whether a report states an entity as present; uncertain is not a positive.
POSITIVE_STATUS = "present"


@dataclass(frozen=True, slots=True)
class TargetEntities:
    """Entity ids and English names, in the order of the multi-hot target vector."""

    entity_ids: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def from_frame(cls, vocabulary: pl.DataFrame) -> TargetEntities:
        """Validate a vocabulary table; a broken vocabulary is a configuration error, not bad records."""
        missing = {"entity_id", "name"} - set(vocabulary.columns)
        if missing:
            raise ValueError(f"vocabulary lacks columns {sorted(missing)}; it has {vocabulary.columns}")
        frame = vocabulary.select(pl.col("entity_id").cast(pl.String), pl.col("name").cast(pl.String))
        if frame.height == 0:
            raise ValueError("vocabulary is empty")
        if (nulls := frame.filter(pl.col("entity_id").is_null() | pl.col("name").is_null())).height:
            raise ValueError(f"vocabulary rows without entity_id or name: {nulls.head(5).to_dicts()}")
        if (repeated := frame.filter(pl.col("entity_id").is_duplicated())).height:
            raise ValueError(f"vocabulary entity_id values repeat: {sorted(set(repeated['entity_id']))[:10]}")
        return cls(tuple(frame["entity_id"]), tuple(frame["name"]))

    def __len__(self) -> int:
        return len(self.entity_ids)

    @property
    def key(self) -> str:
        return stable_hash(list(zip(self.entity_ids, self.names, strict=True)))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {"entity_id": self.entity_ids, "entity_index": range(len(self))},
            schema={"entity_id": pl.String, "entity_index": pl.UInt32},
        )


@dataclass(frozen=True, slots=True)
class RecordKnowledge:
    """Per record, the target indices of its positive entities; and what could not be used."""

    positives: pl.DataFrame  # record_id, entity_indices (list[u32], sorted)
    quarantine: pl.DataFrame  # record_id, source, stage, reason, detail
    mentions_in: int
    not_positive: int  # rows with status absent or uncertain

    @property
    def key(self) -> str:
        return stable_hash(self.quarantine.rows())


def prepare_knowledge(record_entities: pl.DataFrame, targets: TargetEntities, record_ids: pl.Series) -> RecordKnowledge:
    """Map ``record_entities`` (record_id, entity_id, status) onto target indices.

    A record mentioned with the same entity more than once counts it as positive
    when any of those rows says present.
    """
    missing = {"record_id", "entity_id", "status"} - set(record_entities.columns)
    if missing:
        raise ValueError(f"record_entities lacks columns {sorted(missing)}; it has {record_entities.columns}")
    rows = record_entities.select(
        pl.col("record_id").cast(pl.String), pl.col("entity_id").cast(pl.String), pl.col("status").cast(pl.String)
    ).join(targets.frame(), on="entity_id", how="left")
    known = pl.DataFrame({"record_id": record_ids.cast(pl.String)}).with_columns(pl.lit(True).alias("_known"))
    rows = rows.join(known, on="record_id", how="left")
    reason = (
        pl.when(pl.col("record_id").is_null())
        .then(pl.lit("missing_record_id"))
        .when(pl.col("_known").is_null())
        .then(pl.lit("unknown_record"))
        .when(pl.col("status").is_null() | ~pl.col("status").is_in(STATUSES))
        .then(pl.lit("invalid_status"))
        .when(pl.col("entity_index").is_null())
        .then(pl.lit("unknown_entity"))
    )
    rows = rows.with_columns(reason.alias("reason"))
    quarantine = (
        rows.filter(pl.col("reason").is_not_null())
        .select(
            pl.col("record_id").fill_null(""),
            pl.col("record_id").fill_null("").str.split("/").list.first().alias("source"),
            pl.lit(STAGE_FEATURES).alias("stage"),
            "reason",
            pl.format(
                "{}: entity {} with status {}: {}",
                pl.col("record_id").fill_null("<no record id>"),
                pl.col("entity_id").fill_null("<none>"),
                pl.col("status").fill_null("<none>"),
                pl.col("reason").replace(_REASON_TEXT),
            ).alias("detail"),
        )
        .sort("record_id", "detail")
    )
    usable = rows.filter(pl.col("reason").is_null())
    positives = (
        usable.filter(pl.col("status") == POSITIVE_STATUS)
        .group_by("record_id")
        .agg(pl.col("entity_index").unique().sort().alias("entity_indices"))
    )
    return RecordKnowledge(
        positives=positives,
        quarantine=quarantine,
        mentions_in=record_entities.height,
        not_positive=usable.filter(pl.col("status") != POSITIVE_STATUS).height,
    )


_REASON_TEXT = {
    "missing_record_id": "the row names no record",
    "unknown_record": "the record is not in the signal store",
    "invalid_status": f"status must be one of {', '.join(STATUSES)}",
    "unknown_entity": "the entity is not in the target entities",
}


# Label-derived knowledge: each record's source labels (PTB-XL's cardiologist SCP
# codes, the Challenge's SNOMED CT diagnoses) taken as present entities. It trains
# the model before (or instead of) LLM extraction and bounds what extraction can give.


def label_vocabulary(scp_statements: Path | None = None, dx_mapping_dir: Path | None = None) -> pl.DataFrame:
    """One entity per SCP-ECG statement and per Challenge SNOMED CT code: entity_id, name, system, code."""
    frames = []
    if scp_statements is not None:
        statements = read_scp_statements(scp_statements)
        frames.append(statements.select(pl.lit("scp").alias("system"), "code", pl.col("description").alias("name")))
    if dx_mapping_dir is not None:
        frames.append(read_dx_mapping(dx_mapping_dir).select(pl.lit("snomed").alias("system"), "code", "name"))
    if not frames:
        raise ValueError("label_vocabulary needs scp_statements or dx_mapping_dir")
    return pl.concat(frames).select(pl.format("{}:{}", "system", "code").alias("entity_id"), "name", "system", "code")


def entities_from_labels(metadata: pl.DataFrame, vocabulary: pl.DataFrame) -> pl.DataFrame:
    """record_entities (record_id, entity_id, status='present') from the records' source labels."""
    return (
        metadata.select("record_id", "labels")
        .explode("labels", empty_as_null=False)
        .drop_nulls("labels")
        .unnest("labels")
        .select("record_id", pl.format("{}:{}", "system", "code").alias("entity_id"))
        .join(vocabulary.select("entity_id"), on="entity_id", how="semi")
        .unique(maintain_order=True)
        .with_columns(pl.lit(POSITIVE_STATUS).alias("status"))
    )
