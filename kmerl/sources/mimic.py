"""MIMIC-IV-ECG: ``record_list.csv``, ``machine_measurements.csv`` and ``files/``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import polars as pl

from kmerl.records import Reason, RecordRef, Rejection
from kmerl.sources.base import SourceAdapter
from kmerl.sources.tabular import (
    count_rows,
    lossy_text_notes,
    parse_datetime,
    parse_id,
    scan_text_csv,
    stream_sorted_rows,
)

REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
_NO_MEASUREMENTS = "no machine_measurements.csv row for this study_id; report left empty"


class MimicIvEcgSource(SourceAdapter):
    """Machine reports joined to records by ``study_id`` (never by row position).

    The non-empty ``report_0``..``report_17`` statements are joined in order with
    ". ", as MERL does, but case is kept: the extraction stage reads it.
    """

    kind: Literal["mimic_iv_ecg"] = "mimic_iv_ecg"

    def count_records(self) -> int:
        return count_rows(self.root / "record_list.csv")

    def iter_records(self, target_fs: int) -> Iterator[RecordRef | Rejection]:
        records = scan_text_csv(self.root / "record_list.csv")
        measurements = scan_text_csv(self.root / "machine_measurements.csv")
        statements = [
            pl.col(c).str.strip_chars().str.strip_chars_end(".").replace("", None)
            for c in REPORT_COLUMNS
            if c in measurements.collect_schema()
        ]
        reports = measurements.select(
            pl.col("study_id"),
            pl.concat_str(statements, separator=". ", ignore_nulls=True).alias("report"),
            pl.lit(True).alias("_measured"),
        )
        joined = records.join(reports, on="study_id", how="left")
        for row in stream_sorted_rows(joined, ["study_id"]):
            yield self._describe(row)

    def _describe(self, row: dict[str, Any]) -> RecordRef | Rejection:
        study_id = parse_id(row.get("study_id"))
        if study_id is None or not row.get("path"):
            return Rejection(
                self.record_id(str(row.get("study_id"))),
                self.name,
                Reason.BAD_METADATA,
                f"record_list.csv row {row} has no usable study_id or path",
            )
        patient_id = parse_id(row.get("subject_id"))
        report = (row.get("report") or "").strip() or None
        notes = lossy_text_notes(report) + (() if row.get("_measured") else (_NO_MEASUREMENTS,))
        return RecordRef(
            record_id=self.record_id(study_id),
            source=self.name,
            native_id=study_id,
            record_path=self.root / row["path"],
            relative_path=row["path"],
            patient_id=patient_id,
            split=self.hashed_split(patient_id or study_id),
            report=report,
            recorded_at=parse_datetime(row.get("ecg_time")),
            notes=notes,
        )
