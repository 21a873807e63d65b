"""Ingesting one shard of records (runs in a worker process)."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kmerl.hashing import bytes_hash, stable_hash
from kmerl.preprocess import PreprocessConfig, plan_window, preprocess_signal
from kmerl.records import Reason, RecordError, RecordRef, Rejection
from kmerl.signals.layout import SourceLayout
from kmerl.signals.manifest import ShardEntry
from kmerl.signals.schema import STAGE_INGEST
from kmerl.signals.writer import QuarantineRow, SignalRow, quarantine_table, signal_table, write_shard
from kmerl.sources.base import SourceAdapter
from kmerl.storage import parquet_file, read_parquet
from kmerl.wfdb_io import (
    WfdbHeader,
    header_file,
    parse_header,
    read_header_bytes,
    read_signal,
    signal_files,
    signal_length,
)

log = logging.getLogger(__name__)

_LOSSY_HEADER_NOTE = "header contained bytes that are not valid UTF-8; they were replaced with U+FFFD"


@dataclass(frozen=True, slots=True)
class ShardTask:
    index: int
    source: SourceAdapter
    refs: tuple[RecordRef, ...]
    rejections: tuple[Rejection, ...]
    config: PreprocessConfig
    code_version: str
    layout: SourceLayout


@dataclass(frozen=True, slots=True)
class ShardResult:
    index: int
    entry: ShardEntry
    reused: bool


@dataclass(frozen=True, slots=True)
class _ListedRecord:
    """A record with its header read (or the reason it could not be)."""

    ref: RecordRef
    header: WfdbHeader | None
    error: RecordError | None
    fingerprint: str


def process_shard(task: ShardTask) -> ShardResult:
    """Ingest a shard, or reuse it when a complete shard with the same key exists.

    The key hashes everything that determines the shard's content (record
    descriptions, header bytes, signal file sizes and mtimes, preprocessing
    configuration, code version), so a re-run after a kill redoes only the shards
    that never finished, and an unchanged archive is not read again.
    """
    listed = [_list_record(ref) for ref in task.refs]
    key = stable_hash(
        task.code_version,
        task.config,
        [record.fingerprint for record in listed],
        [dataclasses.asdict(rejection) for rejection in task.rejections],
    )
    if task.layout.shard_complete(key):
        return ShardResult(task.index, _entry_from_files(task.layout, key), reused=True)

    rows: list[SignalRow] = []
    quarantine = [_quarantine_row(r.record_id, r.source, r.reason, r.detail) for r in task.rejections]
    for record in listed:
        try:
            rows.append(_ingest_record(record, task.source, task.config))
        except RecordError as error:
            quarantine.append(_quarantine_row(record.ref.record_id, record.ref.source, error.reason, error.detail))
        except Exception as error:  # a bug on one record must not stop the others
            log.exception("unexpected error ingesting %s", record.ref.record_id)
            detail = f"unexpected {type(error).__name__}: {error}"
            quarantine.append(_quarantine_row(record.ref.record_id, record.ref.source, Reason.INTERNAL_ERROR, detail))
    write_shard(task.layout, key, signal_table(rows, task.config), quarantine_table(quarantine))
    entry = ShardEntry(
        key=key,
        records_in=len(task.refs) + len(task.rejections),
        ingested=len(rows),
        quarantined=len(quarantine),
        quarantine_reasons=dict(Counter(row.reason for row in quarantine)),
    )
    return ShardResult(task.index, entry, reused=False)


def _quarantine_row(record_id: str, source: str, reason: Reason, detail: str) -> QuarantineRow:
    """Details start with the record id, so a log line or a query result names the record."""
    return QuarantineRow(record_id, source, STAGE_INGEST, reason.value, f"{record_id}: {detail}")


def _list_record(ref: RecordRef) -> _ListedRecord:
    description = {k: v for k, v in dataclasses.asdict(ref).items() if k != "record_path"}
    try:
        raw = read_header_bytes(ref.record_path)
    except RecordError as error:
        return _ListedRecord(ref, None, error, stable_hash(description, "no header"))
    try:
        header = parse_header(raw, header_file(ref.record_path))
    except RecordError as error:
        return _ListedRecord(ref, None, error, stable_hash(description, bytes_hash(raw)))
    stats = [_file_stat(path) for path in signal_files(ref.record_path, header)]
    return _ListedRecord(ref, header, None, stable_hash(description, bytes_hash(raw), stats))


def _file_stat(path: Path) -> tuple[str, int, int] | tuple[str, None, None]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (path.name, None, None)
    return (path.name, stat.st_size, stat.st_mtime_ns)


def _ingest_record(record: _ListedRecord, source: SourceAdapter, config: PreprocessConfig) -> SignalRow:
    if record.error is not None:
        raise record.error
    assert record.header is not None
    header = record.header
    ref = source.complete(record.ref, header)
    if header.lossy_text:
        ref = ref.with_updates(notes=(*ref.notes, _LOSSY_HEADER_NOTE))
    sig_len = signal_length(ref.record_path, header)
    window = plan_window(sig_len, header.fs, config)
    signal = read_signal(ref.record_path, header, window.start, window.stop)
    ecg = preprocess_signal(signal.samples, signal.names, header.fs, window, config)
    return SignalRow(
        ref=ref,
        original_fs=header.fs,
        original_samples=sig_len,
        original_channels=signal.names,
        ecg=ecg,
        content_hash=bytes_hash(ecg.signal.tobytes() + ecg.lead_mask.tobytes()),
        input_fingerprint=record.fingerprint,
    )


def _entry_from_files(layout: SourceLayout, key: str) -> ShardEntry:
    ingested = parquet_file(layout.signal_file(key)).metadata.num_rows
    reasons = read_parquet(layout.quarantine_file(key), columns=["reason"]).column("reason").to_pylist()
    return ShardEntry(
        key=key,
        records_in=ingested + len(reasons),
        ingested=ingested,
        quarantined=len(reasons),
        quarantine_reasons=dict(Counter(reasons)),
    )
