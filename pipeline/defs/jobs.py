"""The jobs: the per-source stages, the training chain, and the comparison run on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetSelection, define_asset_job

from assets.shared.keys import (
    CORPUS_KNOWLEDGE,
    ECG_SIGNALS,
    ENCODER_EVALUATION,
    EXTERNAL_EVALUATION,
    FEATURE_STORE,
    KMERL_ENCODER,
    MODEL_COMPARISON,
    REPORT_KNOWLEDGE,
    ROTATED_EVALUATION,
)

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export its name
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

INGEST_JOB = "ingest_sources"
EXTRACT_JOB = "extract_knowledge"
PER_SOURCE_JOB = "per_source"
TRAIN_JOB = "train_and_evaluate"
COMPARE_JOB = "compare_models"
CORPORA_JOB = "extract_corpora"
ROTATE_JOB = "rotate_folds"
ARCHIVES_JOB = "evaluate_archives"

ingest_sources = define_asset_job(
    INGEST_JOB,
    selection=AssetSelection.assets(ECG_SIGNALS),
    description="Ingest one source (or slice) into the signal store.",
)
extract_knowledge = define_asset_job(
    EXTRACT_JOB,
    selection=AssetSelection.assets(REPORT_KNOWLEDGE),
    description="Re-extract one source's reports (after a prompt or model change).",
)
per_source = define_asset_job(
    PER_SOURCE_JOB,
    selection=AssetSelection.assets(ECG_SIGNALS, REPORT_KNOWLEDGE),
    description="Ingest one source (or slice) and extract the knowledge in its reports.",
)
train_and_evaluate = define_asset_job(
    TRAIN_JOB,
    selection=AssetSelection.assets(FEATURE_STORE, KMERL_ENCODER, ENCODER_EVALUATION),
    description="Build the feature store from every source, pretrain the encoder, evaluate it.",
)
compare_models = define_asset_job(
    COMPARE_JOB,
    selection=AssetSelection.assets(MODEL_COMPARISON),
    description="Pretrain and evaluate K-MERL, the MERL-style baseline and the ablations on the same data.",
)

rotate_folds = define_asset_job(
    ROTATE_JOB,
    selection=AssetSelection.assets(ROTATED_EVALUATION),
    description="Score every labelled record once: pretrain once per rotation fold, pool the held-out scores.",
)

extract_corpora = define_asset_job(
    CORPORA_JOB,
    selection=AssetSelection.assets(CORPUS_KNOWLEDGE),
    description="Extract and score one report corpus (no signals; nothing downstream).",
)

JOBS = [
    ingest_sources,
    extract_knowledge,
    per_source,
    train_and_evaluate,
    compare_models,
    rotate_folds,
    extract_corpora,
]


def archive_jobs(has_archives: bool) -> list[UnresolvedAssetJobDefinition]:
    """The evaluation of configured archives, when there are any (the asset exists only then)."""
    if not has_archives:
        return []
    return [
        define_asset_job(
            ARCHIVES_JOB,
            selection=AssetSelection.assets(EXTERNAL_EVALUATION),
            description="Evaluate the current encoder on one evaluation archive it never saw.",
        )
    ]
