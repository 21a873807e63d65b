"""Asset checks: what each stage's output must satisfy, evaluated as the stage materializes it.

Each stage declares its specs and returns these results with its materialization,
so a check always judges the version that was just written.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from assets.shared.keys import CORPUS_KNOWLEDGE, ECG_SIGNALS, FEATURE_STORE, REPORT_KNOWLEDGE
from kmerl.extraction import ExtractionRun, QualityReport
from kmerl.extraction.corpus import CorpusExtraction
from kmerl.features import FeatureStore
from kmerl.features.schema import SPLITS
from kmerl.signals import SignalManifest, SignalStore, SourceLayout

SIGNAL_CHECKS = [
    AssetCheckSpec("record_accounting", asset=ECG_SIGNALS, description="records listed == ingested + quarantined"),
    AssetCheckSpec("schema", asset=ECG_SIGNALS, description="every shard has the signal store schema"),
]
KNOWLEDGE_CHECKS = [
    AssetCheckSpec(
        "extraction_validity", asset=REPORT_KNOWLEDGE, description="share of distinct reports not quarantined"
    ),
    AssetCheckSpec("label_agreement", asset=REPORT_KNOWLEDGE, description="micro F1 against cardiologist labels"),
]
CORPUS_CHECKS = [
    AssetCheckSpec(
        "row_accounting", asset=CORPUS_KNOWLEDGE, description="rows == records + rejected; reports all accounted for"
    ),
    AssetCheckSpec(
        "extraction_validity", asset=CORPUS_KNOWLEDGE, description="share of distinct reports not quarantined"
    ),
    AssetCheckSpec("label_agreement", asset=CORPUS_KNOWLEDGE, description="micro F1 against cardiologist labels"),
]
FEATURE_CHECKS = [
    AssetCheckSpec("split_leakage", asset=FEATURE_STORE, description="no patient has rows in two splits"),
]


def record_accounting(listed: int, manifest: SignalManifest) -> AssetCheckResult:
    accounted = manifest.ingested + manifest.quarantined
    return AssetCheckResult(
        check_name="record_accounting",
        passed=listed == manifest.records_in == accounted,
        metadata={"listed_by_source": listed, "ingested": manifest.ingested, "quarantined": manifest.quarantined},
    )


def signal_schema(layout: SourceLayout, manifest: SignalManifest, expected: pa.Schema) -> AssetCheckResult:
    mismatched = [s.key for s in manifest.shards if not pq.read_schema(layout.signal_file(s.key)).equals(expected)]
    return AssetCheckResult(
        check_name="schema",
        passed=not mismatched,
        severity=AssetCheckSeverity.ERROR,
        metadata={"shards": len(manifest.shards), "mismatched_shards": MetadataValue.json(mismatched)},
    )


def row_accounting(extraction: CorpusExtraction) -> AssetCheckResult:
    rows, run = extraction.rows, extraction.run
    return AssetCheckResult(
        check_name="row_accounting",
        passed=extraction.accounted,
        metadata={
            "rows": rows.rows_in,
            "records": rows.records.height,
            "rejected": rows.rejected.height,
            "distinct_reports": run.unique,
            "extracted": run.extracted,
            "cached": run.cached,
            "quarantined": run.quarantined,
        },
    )


def extraction_validity(run: ExtractionRun, minimum: float) -> AssetCheckResult:
    valid = 1 - run.quarantined / run.unique if run.unique else 1.0
    return AssetCheckResult(
        check_name="extraction_validity",
        passed=valid >= minimum,
        metadata={"valid_share": valid, "minimum": minimum, "quarantined": run.quarantined, "distinct": run.unique},
    )


def label_agreement(quality: list[QualityReport], minimum: float) -> AssetCheckResult:
    """A warning, not an error: a weak extractor is worth knowing about, not worth
    blocking the pipeline for (the embedded 135M model is weak by design)."""
    if not quality:
        return AssetCheckResult(
            check_name="label_agreement", passed=True, metadata={"note": "no cardiologist labels in this source"}
        )
    extracted = quality[-1]
    f1 = float(extracted.summary["micro_f1"])
    return AssetCheckResult(
        check_name="label_agreement",
        passed=f1 >= minimum,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "extractor": extracted.name,
            "micro_f1": f1,
            "macro_f1": float(extracted.summary["macro_f1"]),
            "minimum": minimum,
        },
    )


def split_leakage(store: FeatureStore, signals: SignalStore) -> AssetCheckResult:
    """Patients are read from the signal store; records without one count as their own patient."""
    rows = pl.concat([store.split(name).metadata(["record_id", "split"]) for name in SPLITS])
    patients = signals.metadata(["record_id", "source", "patient_id"]).collect()
    joined = rows.join(patients, on="record_id", how="left").filter(pl.col("patient_id").is_not_null())
    leaking = (
        joined.group_by("source", "patient_id")
        .agg(pl.col("split").n_unique().alias("splits"))
        .filter(pl.col("splits") > 1)
    )
    return AssetCheckResult(
        check_name="split_leakage",
        passed=leaking.is_empty(),
        metadata={
            "patients_checked": joined.select("source", "patient_id").n_unique(),
            "patients_in_several_splits": leaking.height,
            "examples": MetadataValue.json(leaking.head(10).to_dicts()),
        },
    )
