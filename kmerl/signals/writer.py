"""Turning ingested records into Parquet shards, written atomically."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kmerl.atomic import atomic_write
from kmerl.preprocess import PreprocessConfig, ProcessedECG
from kmerl.records import RecordRef
from kmerl.signals.layout import SourceLayout
from kmerl.signals.schema import METADATA_FIELDS, QUARANTINE_SCHEMA, SIGNAL_COLUMN, signal_schema

ROW_GROUP_ROWS = 8  # a random read decodes one group: 8 rows cost ~1 ms, 64 rows ~8 ms
STATISTICS_COLUMNS = ("record_id", "source", "native_id", "patient_id", "split")


@dataclass(frozen=True, slots=True)
class SignalRow:
    """One ingested record: its description, what was read, and the processed ECG."""

    ref: RecordRef
    original_fs: float
    original_samples: int
    original_channels: list[str]
    ecg: ProcessedECG
    content_hash: str
    input_fingerprint: str


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    record_id: str
    source: str
    stage: str
    reason: str
    detail: str


def signal_table(rows: list[SignalRow], config: PreprocessConfig) -> pa.Table:
    schema = signal_schema(config.dtype, config.target_samples, config.target_fs)
    metadata = pa.Table.from_pylist([_metadata(row) for row in rows], schema=pa.schema(METADATA_FIELDS))
    tensor_type = schema.field(SIGNAL_COLUMN).type
    samples = np.stack([row.ecg.signal for row in rows]) if rows else np.empty((0,), dtype=config.dtype)
    storage = pa.FixedSizeListArray.from_arrays(
        pa.array(samples.astype(config.dtype, copy=False).reshape(-1)), tensor_type.storage_type.list_size
    )
    signal = pa.ExtensionArray.from_storage(tensor_type, storage)
    return metadata.append_column(schema.field(SIGNAL_COLUMN), signal).replace_schema_metadata(schema.metadata)


def _metadata(row: SignalRow) -> dict[str, object]:
    ref, ecg = row.ref, row.ecg
    return {
        "record_id": ref.record_id,
        "source": ref.source,
        "native_id": ref.native_id,
        "patient_id": ref.patient_id,
        "split": None if ref.split is None else ref.split.value,
        "fold": ref.fold,
        "age": ref.age,
        "sex": ref.sex,
        "recorded_at": ref.recorded_at,
        "report": ref.report,
        "labels": [{"system": label.system, "code": label.code, "score": label.score} for label in ref.labels],
        "original_fs": row.original_fs,
        "original_samples": row.original_samples,
        "original_channels": row.original_channels,
        "lead_mask": ecg.lead_mask.tolist(),
        "valid_samples": ecg.valid_samples,
        "length_policy": ecg.length_policy.value,
        "crop_offset_s": ecg.crop_offset_s,
        "dropped_channels": list(ecg.dropped_channels),
        "lead_issues": [{"lead": issue.lead, "issue": issue.issue} for issue in ecg.lead_issues],
        "interpolated_samples": ecg.interpolated_samples,
        "notes": list(ref.notes),
        "content_hash": row.content_hash,
        "input_fingerprint": row.input_fingerprint,
    }


def quarantine_table(rows: list[QuarantineRow]) -> pa.Table:
    return pa.Table.from_pylist([asdict(row) for row in rows], schema=QUARANTINE_SCHEMA)


def write_shard(layout: SourceLayout, key: str, signals: pa.Table, quarantine: pa.Table) -> None:
    """Quarantine first, signals last: a shard is complete once its signal file exists."""
    with atomic_write(layout.quarantine_file(key)) as handle:
        pq.write_table(quarantine, handle, compression="zstd")
    with atomic_write(layout.signal_file(key)) as handle:
        pq.write_table(
            signals,
            handle,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            # Byte-stream splitting lets zstd compress float samples; min/max
            # statistics of 12,000-sample lists would only bloat the footer.
            use_byte_stream_split=[SIGNAL_COLUMN],
            write_statistics=list(STATISTICS_COLUMNS),
        )
