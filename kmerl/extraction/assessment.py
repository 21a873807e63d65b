"""How good a knowledge version is on a set of labelled records: per split, beside the
lexicon on the same records, with intervals, breakdowns and a paired difference, and
the vocabulary gaps of the records one may tune on.

Used by the ``report_knowledge`` and ``report_corpus_knowledge`` assets and by
``kmerl quality``, so every quality table is made the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from kmerl.corpora import VALIDATION
from kmerl.extraction.extractor import LexiconExtractor
from kmerl.extraction.gaps import vocabulary_gaps
from kmerl.extraction.quality import (
    BootstrapConfig,
    QualityReport,
    group_differences,
    paired_difference,
    score_extraction,
)
from kmerl.extraction.runner import extract_reports
from kmerl.extraction.store import KnowledgeStore
from kmerl.extraction.vocabulary import CodeSystem, Vocabulary

ALL_RECORDS = "all records"


@dataclass(frozen=True, slots=True)
class Assessment:
    knowledge_version: str
    reports: list[QualityReport] = field(default_factory=list)  # per split: the lexicon first, then the version
    # per split, then per language and report kind of >= 50 records: version minus lexicon
    differences: list[dict[str, object]] = field(default_factory=list)
    gaps: pl.DataFrame = field(default_factory=pl.DataFrame)  # vocabulary gaps of the non-validation records

    @property
    def scored(self) -> bool:
        return bool(self.reports)

    def report(self, split: str, knowledge_version: str) -> QualityReport | None:
        return next((r for r in self.reports if r.split == split and r.knowledge_version == knowledge_version), None)


def assess(
    store: KnowledgeStore,
    records: pl.DataFrame,
    knowledge_version: str,
    vocabulary: Vocabulary,
    *,
    name: str,
    compare_with_lexicon: bool = True,
    max_mentions: int = 12,
    system: CodeSystem = "scp",
    bootstrap: BootstrapConfig | None = None,
) -> Assessment:
    """Score ``knowledge_version`` on ``records`` (``record_id, report, report_key, labels``,
    optionally ``split``, ``report_kind``) that carry ``system`` labels.

    The lexicon baseline is extracted for the same reports (cheap, cached) and scored
    beside it, per split, with the paired bootstrap of the difference.
    """
    labelled = records.filter(
        pl.col("labels").list.eval(pl.element().struct.field("system") == system).list.any().fill_null(False)
    )
    gaps = _gaps(store, records, knowledge_version, vocabulary)
    if labelled.is_empty():
        return Assessment(knowledge_version, gaps=gaps)
    versions = [(name, knowledge_version)]
    provenance = store.provenance(knowledge_version)
    if compare_with_lexicon and provenance.extractor != "lexicon":
        lexicon = LexiconExtractor(vocabulary, max_mentions)
        baseline = extract_reports(labelled["report"].to_list(), lexicon, store, vocabulary)
        versions.insert(0, ("lexicon", baseline.knowledge_version))
    reports: list[QualityReport] = []
    differences: list[dict[str, object]] = []
    for split, frame in _splits(labelled):
        scored = []
        for label, version in versions:
            with_language = frame.join(_languages(store, version), on="report_key", how="left")
            scored.append(
                score_extraction(
                    label, version, with_language, store.entities(version), vocabulary,
                    split=split, system=system, bootstrap=bootstrap,
                )
            )  # fmt: skip
        reports += scored
        if len(scored) == 2:
            first, second = scored
            differences.append(
                {"split": split, "versus": first.name, "grouping": "all", "group": "all records",
                 **paired_difference(first, second, bootstrap)}
            )  # fmt: skip
            differences += [
                {"split": split, "versus": first.name, **row} for row in group_differences(first, second, bootstrap)
            ]
    return Assessment(knowledge_version, reports, differences, gaps)


def differences_markdown(assessment: Assessment) -> str:
    lines = [
        "| split | records of | versus | records | Δ micro F1 | 95% CI (paired) | beyond noise |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for d in assessment.differences:
        excludes_zero = d["low"] > 0 or d["high"] < 0  # type: ignore[operator]
        of = d["group"] if d["grouping"] == "all" else f"{d['grouping']} {d['group']}"
        lines.append(
            f"| {d['split']} | {of} | {d['versus']} | {d['records']} | {d['delta_micro_f1']:+.3f} "
            f"| [{d['low']:+.3f}, {d['high']:+.3f}] | {'yes' if excludes_zero else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def _splits(records: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """Each named split of the records, in a stable order; all records when none is named."""
    if "split" not in records.columns or records["split"].is_null().all():
        return [(ALL_RECORDS, records)]
    names = sorted(records["split"].drop_nulls().unique().to_list())
    return [(name, records.filter(pl.col("split") == name)) for name in names]


def _languages(store: KnowledgeStore, version: str) -> pl.DataFrame:
    return store.table("reports", version).select("report_key", "language").unique("report_key")


def _gaps(store: KnowledgeStore, records: pl.DataFrame, version: str, vocabulary: Vocabulary) -> pl.DataFrame:
    """Gaps of the records one may tune on: validation records never shape the vocabulary."""
    tunable = records
    if "split" in records.columns:
        tunable = records.filter(pl.col("split").is_null() | (pl.col("split") != VALIDATION))
    reports = store.table("reports", version).select("knowledge_version", "report_key", "unmatched")
    entities = store.entities(version).with_columns(pl.lit(version).alias("knowledge_version"))
    return vocabulary_gaps(
        reports.join(tunable.select("report_key").unique(), on="report_key"), tunable, entities, vocabulary
    )
