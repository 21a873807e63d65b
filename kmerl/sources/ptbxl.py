"""PTB-XL: ``ptbxl_database.csv`` plus ``records100/`` and ``records500/``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import polars as pl

from kmerl.records import Label, Reason, RecordRef, Rejection, Split
from kmerl.sources.base import SourceAdapter
from kmerl.sources.tabular import (
    count_rows,
    lossy_text_notes,
    parse_datetime,
    parse_float,
    parse_id,
    parse_int,
    scan_text_csv,
    stream_sorted_rows,
)

_FOLD_SPLITS: dict[int, Split] = {9: Split.VAL, 10: Split.TEST}  # folds 1-8: train
_SEXES = {"0": "male", "1": "female"}


class PtbXlSource(SourceAdapter):
    """Reports, SCP-ECG labels, stratified folds and patient ids from the database CSV."""

    kind: Literal["ptbxl"] = "ptbxl"

    @property
    def scp_statements_file(self) -> Path:
        return self.root / "scp_statements.csv"

    def count_records(self) -> int:
        return count_rows(self.root / "ptbxl_database.csv")

    def iter_records(self, target_fs: int) -> Iterator[RecordRef | Rejection]:
        file_column = "filename_lr" if target_fs <= 100 else "filename_hr"
        frame = scan_text_csv(self.root / "ptbxl_database.csv").with_columns(
            pl.col("ecg_id").cast(pl.Float64, strict=False).cast(pl.Int64, strict=False).alias("_order")
        )
        for row in stream_sorted_rows(frame, ["_order", "ecg_id"]):
            yield self._describe(row, file_column)

    def _describe(self, row: dict[str, Any], file_column: str) -> RecordRef | Rejection:
        raw_id = row["ecg_id"]
        if row["_order"] is None or not row.get(file_column):
            return Rejection(
                self.record_id(str(raw_id)),
                self.name,
                Reason.BAD_METADATA,
                f"ptbxl_database.csv row with ecg_id={raw_id!r} has no usable ecg_id or {file_column}",
            )
        native_id = str(row["_order"])
        labels, label_notes = _parse_scp_codes(row.get("scp_codes"))
        fold = parse_int(row.get("strat_fold"))
        report = (row.get("report") or "").strip() or None
        return RecordRef(
            record_id=self.record_id(native_id),
            source=self.name,
            native_id=native_id,
            record_path=self.root / row[file_column],
            relative_path=row[file_column],
            patient_id=parse_id(row.get("patient_id")),
            split=None if fold is None else _FOLD_SPLITS.get(fold, Split.TRAIN),
            fold=fold,
            report=report,
            labels=labels,
            age=parse_float(row.get("age")),
            sex=_SEXES.get(row.get("sex") or ""),
            recorded_at=parse_datetime(row.get("recording_date")),
            notes=lossy_text_notes(report) + label_notes,
        )


def _parse_scp_codes(text: str | None) -> tuple[tuple[Label, ...], tuple[str, ...]]:
    if not text:
        return (), ()
    try:
        codes = ast.literal_eval(text)
        return tuple(Label("scp", str(code), float(score)) for code, score in codes.items()), ()
    except (ValueError, SyntaxError, AttributeError, TypeError):
        return (), (f"scp_codes {text[:80]!r} is not a dictionary of code: likelihood; labels left empty",)
