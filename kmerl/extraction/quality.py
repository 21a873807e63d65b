"""Extraction quality against cardiologist labels (PTB-XL ``scp_codes``).

Labels are mapped to entities through the vocabulary's codes; an entity counts
as extracted when a report asserts it (present or uncertain, evidence found).
Both sides are widened to broader entities (a rapid atrial fibrillation is an
atrial fibrillation), and only entities the labels can name are scored. The
labels describe the ECG, not the text: a perfect reader of the report does not
reach 1.0, so compare extractors with each other, not with 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.atomic import atomic_write, write_text_atomic
from kmerl.extraction.vocabulary import CodeSystem, Vocabulary

ASSERTED = ("present", "uncertain")


@dataclass(frozen=True, slots=True)
class QualityReport:
    name: str  # which extractor, e.g. "lexicon" or "llm (SmolLM2-135M, verify)"
    knowledge_version: str
    per_entity: pl.DataFrame  # entity_id, name, support, predicted, tp, fp, fn, precision, recall, f1
    summary: dict[str, float | int]

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.parquet`` (per entity) and ``<stem>.md`` (summary + table)."""
        parquet, markdown = folder / f"{stem}.parquet", folder / f"{stem}.md"
        frame = self.per_entity.with_columns(
            pl.lit(self.name).alias("extractor"), pl.lit(self.knowledge_version).alias("knowledge_version")
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


def evaluate(
    name: str,
    knowledge_version: str,
    records: pl.DataFrame,
    entities: pl.DataFrame,
    vocabulary: Vocabulary,
    system: CodeSystem = "scp",
) -> QualityReport:
    """Score extracted entities (``report_key, entity_id, status``) against the labels of
    ``records`` (``record_id, report_key, labels``), over records that have such labels."""
    truth = _widen(label_entities(records, vocabulary, system), vocabulary)
    labelled = truth.select("record_id").unique()
    predicted = _widen(
        records.join(labelled, on="record_id")
        .join(entities.filter(pl.col("status").is_in(ASSERTED)), on="report_key")
        .select("record_id", "entity_id"),
        vocabulary,
    )
    scored = [e.entity_id for e in vocabulary.entities if getattr(e.codes, system)]
    truth = truth.filter(pl.col("entity_id").is_in(scored))
    predicted = predicted.filter(pl.col("entity_id").is_in(scored))
    hits = truth.join(predicted, on=["record_id", "entity_id"])
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
    tp, predicted_total, support = (int(counts[c].sum()) for c in ("tp", "predicted", "support"))
    micro_p, micro_r = _safe(tp, predicted_total), _safe(tp, support)
    supported = per_entity.filter(pl.col("support") > 0)
    summary: dict[str, float | int] = {
        "records": labelled.height,
        "entities_scored": supported.height,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _safe(2 * micro_p * micro_r, micro_p + micro_r),
        "macro_precision": float(supported["precision"].mean() or 0.0),
        "macro_recall": float(supported["recall"].mean() or 0.0),
        "macro_f1": float(supported["f1"].mean() or 0.0),
    }
    return QualityReport(name, knowledge_version, per_entity, summary)


def quality_markdown(reports: list[QualityReport], top: int = 30) -> str:
    """One summary row per extractor, then F1 per entity side by side (most frequent first)."""
    lines = [
        "| extractor | records | micro P | micro R | micro F1 | macro P | macro R | macro F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        s = r.summary
        lines.append(
            f"| {r.name} | {s['records']} | {s['micro_precision']:.3f} | {s['micro_recall']:.3f} | {s['micro_f1']:.3f} "
            f"| {s['macro_precision']:.3f} | {s['macro_recall']:.3f} | {s['macro_f1']:.3f} |"
        )
    support = (
        pl.concat([r.per_entity.select("entity_id", "name", "support") for r in reports]).unique("entity_id")
        .sort(["support", "entity_id"], descending=[True, False]).head(top)
    )  # fmt: skip
    lines += ["", "| entity | support | " + " | ".join(f"F1 {r.name}" for r in reports) + " |"]
    lines.append("|---|---:|" + "---:|" * len(reports))
    f1 = [dict(r.per_entity.select("entity_id", "f1").iter_rows()) for r in reports]
    for entity_id, name, count in support.iter_rows():
        lines.append(f"| {name} | {count} | " + " | ".join(f"{scores.get(entity_id, 0.0):.2f}" for scores in f1) + " |")
    return "\n".join(lines) + "\n"


def _widen(pairs: pl.DataFrame, vocabulary: Vocabulary) -> pl.DataFrame:
    ancestors = [(e.entity_id, a) for e in vocabulary.entities for a in vocabulary.ancestors(e.entity_id)]
    links = pl.DataFrame(ancestors, schema={"entity_id": pl.String, "ancestor": pl.String}, orient="row")
    broader = pairs.join(links, on="entity_id").select("record_id", pl.col("ancestor").alias("entity_id"))
    return pl.concat([pairs, broader]).unique()


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(0.0)


def _safe(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0
