"""Report corpora: collections of ECG reports without signals, for extraction and its
quality report on their own (no signal store, no pretraining).

Two layouts:

``ptbxl_reports``
    A PTB-XL metadata CSV (the ``ptbxl_database.csv`` columns): ``report``, ``scp_codes``
    (cardiologist labels with likelihoods), ``strat_fold``, ``validated_by_human``.
    Folds split development (tune here) from validation (report here).
``report_table``
    Any CSV or Parquet with an id and a text column, optionally labels (a
    ``{"CODE": likelihood}`` dictionary, a JSON list, or codes separated by ``;``) and a
    split column.

Every row ends as a record (its report goes to extraction, even when empty) or as a
rejected row with its reason (:data:`REJECTION_REASONS`); a problem with the file
itself (missing, unreadable, a required column absent) is a :class:`CorpusError`
naming the file.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kmerl.extraction.vocabulary import CodeSystem

DEVELOPMENT = "development"
VALIDATION = "validation"
REJECTION_REASONS = ("missing_record_id", "duplicate_record_id")
LABELS_SCHEMA = pl.List(pl.Struct({"system": pl.String, "code": pl.String, "score": pl.Float32}))
RECORDS_SCHEMA = {
    "record_id": pl.String,
    "row": pl.Int64,  # 1-based data row in the file
    "report": pl.String,
    "labels": LABELS_SCHEMA,
    "split": pl.String,
    "fold": pl.Int64,
    "report_kind": pl.String,
    "label_problem": pl.String,
}
REJECTED_SCHEMA = {"row": pl.Int64, "record_id": pl.String, "reason": pl.String, "detail": pl.String}


DEFAULT_DEVELOPMENT_FOLDS = (1, 2, 3, 4, 5, 6, 7)


def extraction_split(fold: pl.Expr, development_folds: tuple[int, ...] = DEFAULT_DEVELOPMENT_FOLDS) -> pl.Expr:
    """Where a PTB-XL fold stands for extraction: tune on development, report validation."""
    return (
        pl.when(fold.is_null())
        .then(pl.lit(None, pl.String))
        .when(fold.is_in(list(development_folds)))
        .then(pl.lit(DEVELOPMENT))
        .otherwise(pl.lit(VALIDATION))
    )


class CorpusError(ValueError):
    """The corpus file as a whole cannot be read; the message names the file."""


class _Corpus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Corpus id: prefix of record ids and partition key.")
    path: Path = Field(description="The file (or, for ptbxl_reports, a folder holding ptbxl_database.csv).")


class PtbXlReports(_Corpus):
    kind: Literal["ptbxl_reports"] = "ptbxl_reports"
    development_folds: tuple[int, ...] = Field(
        DEFAULT_DEVELOPMENT_FOLDS, description="strat_fold values to tune on; every other fold is validation."
    )

    def file(self) -> Path:
        if self.path.is_dir():
            found = sorted(self.path.glob("*.csv"))
            if len(found) != 1:
                raise CorpusError(f"{self.path}: expected one PTB-XL metadata CSV in the folder, found {len(found)}")
            return found[0]
        return self.path


class ReportTable(_Corpus):
    kind: Literal["report_table"] = "report_table"
    id_column: str = "id"
    text_column: str = "text"
    labels_column: str | None = Field("labels", description="Optional: labels of each report (missing column = none).")
    label_system: CodeSystem = "scp"
    split_column: str | None = Field(None, description="Optional: a column naming each record's split.")

    def file(self) -> Path:
        return self.path


ReportCorpusConfig = Annotated[PtbXlReports | ReportTable, Field(discriminator="kind")]


@dataclass(frozen=True, slots=True)
class CorpusRows:
    """What a corpus file holds: its records and the rows that could not become one."""

    name: str
    records: pl.DataFrame  # RECORDS_SCHEMA
    rejected: pl.DataFrame  # REJECTED_SCHEMA

    @property
    def rows_in(self) -> int:
        return self.records.height + self.rejected.height


def read_corpus(corpus: PtbXlReports | ReportTable) -> CorpusRows:
    if isinstance(corpus, PtbXlReports):
        return _read_ptbxl(corpus)
    return _read_table(corpus)


def _read_ptbxl(corpus: PtbXlReports) -> CorpusRows:
    path = corpus.file()
    frame = _load(path, required=("ecg_id", "report"))
    columns = set(frame.columns)
    folds = frame["strat_fold"].cast(pl.Float64, strict=False).cast(pl.Int64) if "strat_fold" in columns else None
    validated = frame["validated_by_human"].str.to_lowercase() if "validated_by_human" in columns else None
    parsed = [_parse_scp_codes(text) for text in frame.get_column("scp_codes")] if "scp_codes" in columns else None
    rows = pl.DataFrame(
        {
            "native_id": frame["ecg_id"].cast(pl.Float64, strict=False).cast(pl.Int64).cast(pl.String),
            "report": frame["report"],
            "labels": pl.Series(
                [labels for labels, _ in parsed] if parsed else [None] * frame.height, dtype=LABELS_SCHEMA
            ),
            "fold": folds if folds is not None else pl.Series([None] * frame.height, dtype=pl.Int64),
            "report_kind": (
                validated.replace_strict({"false": "automatic", "true": "confirmed"}, default=None)
                if validated is not None
                else pl.Series([None] * frame.height, dtype=pl.String)
            ),
            "label_problem": [problem for _, problem in parsed] if parsed else [None] * frame.height,
        },
        schema_overrides={"label_problem": pl.String},
    ).with_columns(split=extraction_split(pl.col("fold"), corpus.development_folds))
    return _accounted(corpus.name, rows)


def _read_table(corpus: ReportTable) -> CorpusRows:
    path = corpus.file()
    frame = _load(path, required=(corpus.id_column, corpus.text_column))
    has_labels = corpus.labels_column is not None and corpus.labels_column in frame.columns
    parsed = [_parse_labels(v, corpus.label_system) for v in frame[corpus.labels_column]] if has_labels else None  # type: ignore[index]
    if corpus.split_column is not None and corpus.split_column not in frame.columns:
        raise CorpusError(f"{path}: split column {corpus.split_column!r} not found; columns: {frame.columns}")
    rows = pl.DataFrame(
        {
            "native_id": frame[corpus.id_column].cast(pl.String),
            "report": frame[corpus.text_column].cast(pl.String),
            "labels": pl.Series(
                [labels for labels, _ in parsed] if parsed else [None] * frame.height, dtype=LABELS_SCHEMA
            ),
            "fold": pl.Series([None] * frame.height, dtype=pl.Int64),
            "report_kind": pl.Series([None] * frame.height, dtype=pl.String),
            "label_problem": pl.Series(
                [problem for _, problem in parsed] if parsed else [None] * frame.height, dtype=pl.String
            ),
            "split": (
                frame[corpus.split_column].cast(pl.String)
                if corpus.split_column
                else pl.Series([None] * frame.height, dtype=pl.String)
            ),
        }
    )
    return _accounted(corpus.name, rows)


def _load(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    """Every column as text (a malformed cell affects its row, not the whole read)."""
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except (OSError, pl.exceptions.PolarsError) as error:
        raise CorpusError(
            f"{path}: cannot be read as a {'Parquet' if path.suffix == '.parquet' else 'CSV'} file: {error}"
        ) from error
    if missing := [column for column in required if column not in frame.columns]:
        raise CorpusError(f"{path}: required column(s) {missing} not found; columns: {frame.columns}")
    return frame


def _accounted(name: str, rows: pl.DataFrame) -> CorpusRows:
    """Records keyed ``<corpus>/<id>``; rows without an id or repeating one are rejected."""
    rows = rows.with_row_index("row", offset=1).with_columns(
        pl.col("row").cast(pl.Int64),
        record_id=pl.when(pl.col("native_id").str.strip_chars() != "").then(pl.lit(f"{name}/") + pl.col("native_id")),
        report=pl.col("report").fill_null(""),
    )
    repeated = pl.col("record_id").is_duplicated() & (pl.col("row") != pl.col("row").min().over("record_id"))
    rejected = rows.filter(pl.col("record_id").is_null() | repeated).select(
        "row",
        "record_id",
        reason=pl.when(pl.col("record_id").is_null())
        .then(pl.lit("missing_record_id"))
        .otherwise(pl.lit("duplicate_record_id")),
        detail=pl.when(pl.col("record_id").is_null())
        .then(pl.format("row {} has no id", "row"))
        .otherwise(pl.format("row {} repeats id {} of an earlier row", "row", "native_id")),
    )
    records = rows.join(rejected.select("row"), on="row", how="anti").select(list(RECORDS_SCHEMA))
    return CorpusRows(name, records.cast(RECORDS_SCHEMA), rejected.cast(REJECTED_SCHEMA))  # type: ignore[arg-type]


def _parse_scp_codes(text: str | None) -> tuple[list[dict[str, object]] | None, str | None]:
    if text is None or not text.strip():
        return [], None
    try:
        codes = ast.literal_eval(text)
        return [{"system": "scp", "code": str(code), "score": float(score)} for code, score in codes.items()], None
    except (ValueError, SyntaxError, AttributeError, TypeError, MemoryError):
        return None, f"scp_codes {text[:80]!r} is not a dictionary of code: likelihood"


def _parse_labels(value: str | None, system: CodeSystem) -> tuple[list[dict[str, object]] | None, str | None]:
    """``{"CODE": score}`` (Python or JSON), a JSON list of codes, or ``CODE;CODE``."""
    if value is None or not str(value).strip():
        return [], None
    text = str(value).strip()
    if text[0] in "{[":
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return None, f"labels {text[:80]!r} are neither a dictionary nor a list of codes"
        if isinstance(parsed, dict):
            try:
                return [{"system": system, "code": str(c), "score": float(s)} for c, s in parsed.items()], None
            except (TypeError, ValueError):
                return None, f"labels {text[:80]!r}: scores must be numbers"
        if isinstance(parsed, list):
            return [{"system": system, "code": str(code), "score": None} for code in parsed], None
        return None, f"labels {text[:80]!r} are neither a dictionary nor a list of codes"
    return [{"system": system, "code": code.strip(), "score": None} for code in text.split(";") if code.strip()], None
