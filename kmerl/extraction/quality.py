"""Extraction quality against cardiologist labels (PTB-XL ``scp_codes``, Challenge SNOMED).

Labels are mapped to entities through the vocabulary's codes; an entity counts as
extracted when a report asserts it (:data:`~kmerl.extraction.schema.ASSERTED`, evidence
found). Both sides are widened along ``broader`` links (a rapid atrial fibrillation is
an atrial fibrillation), and only entities the labels can name are scored.

The labels describe the ECG, not the text: a perfect reader of the report does not
reach 1.0, so compare extractors with each other on the same records, never with 1.0.
Every figure states the split it is on and carries a bootstrap 95% interval over
records; :func:`paired_difference` tells whether two extractors differ beyond noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field
from upath import UPath

from kmerl.atomic import atomic_write, write_text_atomic
from kmerl.extraction.schema import ASSERTED
from kmerl.extraction.vocabulary import CodeSystem, Vocabulary

GROUPINGS = ("language", "report_kind")  # optional columns of the records a report is broken down by


class BootstrapConfig(BaseModel):
    """How intervals are drawn: records resampled with replacement, a fixed seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resamples: int = Field(1000, gt=0)
    seed: int = 0
    level: float = Field(0.95, gt=0, lt=1)


@dataclass(frozen=True, slots=True)
class QualityReport:
    name: str  # which extractor, e.g. "lexicon" or "llm: SmolLM2-135M"
    knowledge_version: str
    split: str  # which records, e.g. "validation (folds 8-10)"
    summary: dict[str, float | int]  # micro/macro P, R, F1; micro_f1_low/high: the bootstrap interval
    per_entity: pl.DataFrame  # entity_id, name, support, predicted, tp, fp, fn, precision, recall, f1
    groups: pl.DataFrame  # grouping, group, records, micro_precision, micro_recall, micro_f1, micro_f1_low/high
    per_record: pl.DataFrame  # record_id, tp, predicted, support: what intervals and paired differences resample

    def write(self, folder: UPath | Path, stem: str) -> tuple[UPath | Path, UPath | Path]:
        """``<stem>.parquet`` (per entity) and ``<stem>.md`` (summary, groups, entities)."""
        parquet, markdown = folder / f"{stem}.parquet", folder / f"{stem}.md"
        frame = self.per_entity.with_columns(
            pl.lit(self.name).alias("extractor"),
            pl.lit(self.knowledge_version).alias("knowledge_version"),
            pl.lit(self.split).alias("split"),
        )
        with atomic_write(parquet) as handle:
            frame.write_parquet(handle)
        write_text_atomic(markdown, quality_markdown([self]))
        return parquet, markdown


def label_entities(records: pl.DataFrame, vocabulary: Vocabulary, system: CodeSystem = "scp") -> pl.DataFrame:
    """``record_id, entity_id`` for every label of ``system`` the vocabulary maps."""
    rows = [
        (record_id, entity_id)
        for record_id, labels in records.select("record_id", "labels").iter_rows()
        for label in labels or ()
        if label["system"] == system and (entity_id := vocabulary.entity_for_code(system, label["code"])) is not None
    ]
    return pl.DataFrame(rows, schema={"record_id": pl.String, "entity_id": pl.String}, orient="row")


def score_extraction(
    name: str,
    knowledge_version: str,
    records: pl.DataFrame,
    entities: pl.DataFrame,
    vocabulary: Vocabulary,
    *,
    split: str = "all records",
    system: CodeSystem = "scp",
    bootstrap: BootstrapConfig | None = None,
) -> QualityReport:
    """Score extracted entities (``report_key, entity_id, status``) against the labels of
    ``records`` (``record_id, report_key, labels`` and optionally ``language``,
    ``report_kind``), over the records that have such labels."""
    bootstrap = bootstrap or BootstrapConfig()
    scored = [e.entity_id for e in vocabulary.entities if getattr(e.codes, system)]
    truth = widen(label_entities(records, vocabulary, system), vocabulary).filter(pl.col("entity_id").is_in(scored))
    labelled = records.join(truth.select("record_id").unique(), on="record_id")
    predicted = widen(
        labelled.join(entities.filter(pl.col("status").is_in(ASSERTED)), on="report_key").select(
            "record_id", "entity_id"
        ),
        vocabulary,
    ).filter(pl.col("entity_id").is_in(scored))
    hits = truth.join(predicted, on=["record_id", "entity_id"])
    per_record = (
        labelled.select("record_id", *[c for c in GROUPINGS if c in labelled.columns])
        .join(hits.group_by("record_id").len("tp"), on="record_id", how="left")
        .join(predicted.group_by("record_id").len("predicted"), on="record_id", how="left")
        .join(truth.group_by("record_id").len("support"), on="record_id", how="left")
        .fill_null(0)
        .sort("record_id")
    )
    counts = (
        pl.DataFrame({"entity_id": scored})
        .join(truth.group_by("entity_id").len("support"), on="entity_id", how="left")
        .join(predicted.group_by("entity_id").len("predicted"), on="entity_id", how="left")
        .join(hits.group_by("entity_id").len("tp"), on="entity_id", how="left")
        .fill_null(0)
        .with_columns(fp=pl.col("predicted") - pl.col("tp"), fn=pl.col("support") - pl.col("tp"))
    )
    per_entity = (
        counts.with_columns(
            precision=_ratio(pl.col("tp"), pl.col("predicted")),
            recall=_ratio(pl.col("tp"), pl.col("support")),
        )
        .with_columns(f1=_ratio(2 * pl.col("precision") * pl.col("recall"), pl.col("precision") + pl.col("recall")))
        .with_columns(name=pl.col("entity_id").replace_strict({e.entity_id: e.name for e in vocabulary.entities}))
        .filter((pl.col("support") > 0) | (pl.col("predicted") > 0))
        .select("entity_id", "name", "support", "predicted", "tp", "fp", "fn", "precision", "recall", "f1")
        .sort(["support", "entity_id"], descending=[True, False])
    )
    supported = per_entity.filter(pl.col("support") > 0)
    summary: dict[str, float | int] = {
        **_micro(per_record, bootstrap),
        "entities_scored": supported.height,
        "macro_precision": float(supported["precision"].mean() or 0.0),
        "macro_recall": float(supported["recall"].mean() or 0.0),
        "macro_f1": float(supported["f1"].mean() or 0.0),
    }
    return QualityReport(
        name, knowledge_version, split, summary, per_entity, _groups(per_record, bootstrap), per_record
    )


def paired_difference(
    a: QualityReport, b: QualityReport, bootstrap: BootstrapConfig | None = None, *, where: pl.Expr | None = None
) -> dict[str, float | int]:
    """Micro F1 of ``b`` minus ``a`` on the records both scored (those of ``a``'s
    ``per_record`` that match ``where``, when given), with a paired bootstrap interval:
    the same resampled records for both, so shared noise cancels."""
    bootstrap = bootstrap or BootstrapConfig()
    joined = a.per_record.join(b.per_record, on="record_id", suffix="_b")
    if where is not None:
        joined = joined.filter(where)
    first = joined.select("tp", "predicted", "support").to_numpy()
    second = joined.select("tp_b", "predicted_b", "support_b").to_numpy()
    draws = _resample_rows(joined.height, bootstrap)
    delta = _f1(second.sum(0)) - _f1(first.sum(0))
    deltas = np.array([_f1(second[rows].sum(0)) - _f1(first[rows].sum(0)) for rows in draws])
    low, high = _interval(deltas, bootstrap.level)
    return {"records": joined.height, "delta_micro_f1": delta, "low": low, "high": high}


def group_differences(
    a: QualityReport, b: QualityReport, bootstrap: BootstrapConfig | None = None, min_records: int = 50
) -> list[dict[str, object]]:
    """:func:`paired_difference` within each language and report kind of at least
    ``min_records`` records: whether ``b`` is lower than ``a`` on any of them."""
    rows: list[dict[str, object]] = []
    for grouping in GROUPINGS:
        if grouping not in a.per_record.columns:
            continue
        sizes = a.per_record.drop_nulls(grouping).group_by(grouping).len().sort(grouping)
        for group, records in sizes.iter_rows():
            if records >= min_records:
                difference = paired_difference(a, b, bootstrap, where=pl.col(grouping) == group)
                rows.append({"grouping": grouping, "group": str(group), **difference})
    return rows


def quality_markdown(reports: Sequence[QualityReport], top: int = 25) -> str:
    """Summary rows (with intervals), the breakdowns, then F1 per entity with support."""
    lines = [
        "| extractor | split | records | micro P | micro R | micro F1 [95% CI] | macro F1 |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in reports:
        s = r.summary
        lines.append(
            f"| {r.name} | {r.split} | {s['records']} | {s['micro_precision']:.3f} | {s['micro_recall']:.3f} "
            f"| {_with_interval(s)} | {s['macro_f1']:.3f} |"
        )
    for grouping in GROUPINGS:
        tables = [(r, r.groups.filter(pl.col("grouping") == grouping)) for r in reports]
        if not any(t.height for _, t in tables):
            continue
        lines += [
            "",
            f"| {grouping} | "
            + " | ".join(f"{r.name}, {r.split}: records, micro F1 [95% CI]" for r, _ in tables)
            + " |",
        ]
        lines.append("|---|" + "---|" * len(tables))
        for group in sorted({g for _, t in tables for g in t["group"].to_list()}):
            cells = []
            for _, table in tables:
                row = table.filter(pl.col("group") == group)
                cells.append(f"{row['records'][0]}, {_with_interval(row.row(0, named=True))}" if row.height else "")
            lines.append(f"| {group} | " + " | ".join(cells) + " |")
    support = (
        pl.concat([r.per_entity.select("entity_id", "name", "support") for r in reports]).unique("entity_id")
        .sort(["support", "entity_id"], descending=[True, False]).head(top)
    )  # fmt: skip
    lines += ["", "| entity | support | " + " | ".join(f"F1 {r.name}, {r.split}" for r in reports) + " |"]
    lines.append("|---|---:|" + "---:|" * len(reports))
    f1 = [dict(r.per_entity.select("entity_id", "f1").iter_rows()) for r in reports]
    for entity_id, name, count in support.iter_rows():
        lines.append(f"| {name} | {count} | " + " | ".join(f"{scores.get(entity_id, 0.0):.2f}" for scores in f1) + " |")
    return "\n".join(lines) + "\n"


def _with_interval(row: dict[str, object]) -> str:
    return f"{row['micro_f1']:.3f} [{row['micro_f1_low']:.3f}, {row['micro_f1_high']:.3f}]"


def _micro(per_record: pl.DataFrame, bootstrap: BootstrapConfig) -> dict[str, float | int]:
    counts = per_record.select("tp", "predicted", "support").to_numpy()
    tp, predicted, support = (int(v) for v in counts.sum(0)) if len(counts) else (0, 0, 0)
    precision, recall = _safe(tp, predicted), _safe(tp, support)
    resampled = [_f1(counts[rows].sum(0)) for rows in _resample_rows(len(counts), bootstrap)] if len(counts) else [0.0]
    low, high = _interval(np.asarray(resampled), bootstrap.level)
    return {
        "records": per_record.height,
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": _f1(np.array([tp, predicted, support])),
        "micro_f1_low": low,
        "micro_f1_high": high,
    }


def _groups(per_record: pl.DataFrame, bootstrap: BootstrapConfig) -> pl.DataFrame:
    rows = []
    for grouping in GROUPINGS:
        if grouping not in per_record.columns:
            continue
        for (group,), frame in per_record.filter(pl.col(grouping).is_not_null()).group_by(
            grouping, maintain_order=True
        ):
            rows.append({"grouping": grouping, "group": str(group), **_micro(frame, bootstrap)})
    schema = {"grouping": pl.String, "group": pl.String, "records": pl.Int64}
    schema |= dict.fromkeys(
        ("micro_precision", "micro_recall", "micro_f1", "micro_f1_low", "micro_f1_high"), pl.Float64
    )
    return pl.DataFrame(rows, schema=schema).sort("grouping", "group")


def _resample_rows(count: int, bootstrap: BootstrapConfig) -> list[np.ndarray]:
    rng = np.random.default_rng(bootstrap.seed)
    return [rng.integers(0, count, size=count) for _ in range(bootstrap.resamples)]


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _f1(counts: np.ndarray) -> float:
    tp, predicted, support = (float(c) for c in counts)
    return 2 * tp / (predicted + support) if predicted + support else 0.0


def widen(pairs: pl.DataFrame, vocabulary: Vocabulary) -> pl.DataFrame:
    """``record_id, entity_id`` pairs with every broader entity of each added."""
    ancestors = [(e.entity_id, a) for e in vocabulary.entities for a in vocabulary.ancestors(e.entity_id)]
    links = pl.DataFrame(ancestors, schema={"entity_id": pl.String, "ancestor": pl.String}, orient="row")
    broader = pairs.join(links, on="entity_id").select("record_id", pl.col("ancestor").alias("entity_id"))
    return pl.concat([pairs, broader]).unique()


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(0.0)


def _safe(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0
