"""Arrow schemas of the feature store: training rows, the entity table, quarantine."""

from __future__ import annotations

import pyarrow as pa

from kmerl.leads import STANDARD_LEADS
from kmerl.signals.schema import LABEL_TYPE, QUARANTINE_SCHEMA, signal_type

STAGE_FEATURES = "features"
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Fixed-shape columns a training loader reads by row; the rest is metadata.
DENSE_COLUMNS: tuple[str, ...] = ("signal", "lead_mask", "report_embedding", "entities", "has_report")


def rows_schema(signal_dtype: str, samples: int, fs: int, text_dim: int, n_entities: int) -> pa.Schema:
    """One row per ECG: what training and evaluation read."""
    fields = [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("report", pa.string()),
        pa.field("labels", pa.list_(LABEL_TYPE)),
        pa.field("has_report", pa.bool_(), nullable=False),
        pa.field("lead_mask", pa.list_(pa.bool_(), len(STANDARD_LEADS)), nullable=False),
        pa.field("report_embedding", pa.list_(pa.float32(), text_dim), nullable=False),
        pa.field("entities", pa.list_(pa.uint8(), n_entities), nullable=False),
        pa.field("signal", signal_type(signal_dtype, samples), nullable=False),
    ]
    metadata = {b"kmerl.fs": str(fs).encode(), b"kmerl.leads": ",".join(STANDARD_LEADS).encode()}
    return pa.schema(fields, metadata=metadata)


def entities_schema(text_dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("entity_id", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), text_dim), nullable=False),
        ]
    )


__all__ = ["DENSE_COLUMNS", "QUARANTINE_SCHEMA", "SPLITS", "STAGE_FEATURES", "entities_schema", "rows_schema"]
