"""Arrow schemas of the signal store and the quarantine table."""

from __future__ import annotations

import pyarrow as pa

from kmerl.leads import STANDARD_LEADS

STAGE_INGEST = "ingest"

LABEL_TYPE = pa.struct([("system", pa.string()), ("code", pa.string()), ("score", pa.float32())])
LEAD_ISSUE_TYPE = pa.struct([("lead", pa.string()), ("issue", pa.string())])

# Columns every row has besides the signal, in order. Readers that do not need
# samples (audits, joins, the extraction stage) read only these.
METADATA_FIELDS: tuple[pa.Field, ...] = (
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("native_id", pa.string(), nullable=False),
    pa.field("patient_id", pa.string()),
    pa.field("split", pa.string()),
    pa.field("fold", pa.int8()),
    pa.field("age", pa.float32()),
    pa.field("sex", pa.string()),
    pa.field("recorded_at", pa.timestamp("us")),
    pa.field("report", pa.string()),
    pa.field("labels", pa.list_(LABEL_TYPE)),
    pa.field("original_fs", pa.float32(), nullable=False),
    pa.field("original_samples", pa.int64(), nullable=False),
    pa.field("original_channels", pa.list_(pa.string()), nullable=False),
    pa.field("lead_mask", pa.list_(pa.bool_(), len(STANDARD_LEADS)), nullable=False),
    pa.field("valid_samples", pa.int32(), nullable=False),
    pa.field("length_policy", pa.string(), nullable=False),
    pa.field("crop_offset_s", pa.float32(), nullable=False),
    pa.field("dropped_channels", pa.list_(pa.string()), nullable=False),
    pa.field("lead_issues", pa.list_(LEAD_ISSUE_TYPE), nullable=False),
    pa.field("interpolated_samples", pa.int32(), nullable=False),
    pa.field("notes", pa.list_(pa.string()), nullable=False),
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("input_fingerprint", pa.string(), nullable=False),
)
METADATA_COLUMNS: tuple[str, ...] = tuple(f.name for f in METADATA_FIELDS)
SIGNAL_COLUMN = "signal"


def signal_type(dtype: str, n_samples: int) -> pa.DataType:
    """(12, samples) tensors: NaN marks absent leads and padding."""
    return pa.fixed_shape_tensor(pa.from_numpy_dtype(dtype), [len(STANDARD_LEADS), n_samples])


def signal_schema(dtype: str, n_samples: int, fs: int) -> pa.Schema:
    metadata = {b"kmerl.fs": str(fs).encode(), b"kmerl.leads": ",".join(STANDARD_LEADS).encode()}
    return pa.schema(
        [*METADATA_FIELDS, pa.field(SIGNAL_COLUMN, signal_type(dtype, n_samples), nullable=False)], metadata=metadata
    )


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)
