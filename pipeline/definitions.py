"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs``.

Everything is built from a :class:`~kmerl.config.KmerlConfig`, so tests (and users
with several configurations) can build the same graph over other data.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    PipesSubprocessClient,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from assets import comparison, evaluation, extraction, features, ingest, training
from kmerl.config import KmerlConfig
from kmerl.storage import is_local
from pipeline.automation import automation_sensor
from pipeline.executors import executor_for, gpu_steps
from pipeline.resources import AuditDatabaseResource, ExtractorResource, StorageResource

INGEST_JOB = "ingest_sources"
EXTRACT_JOB = "extract_knowledge"
PER_SOURCE_JOB = "per_source"
TRAIN_JOB = "train_and_evaluate"
COMPARE_JOB = "compare_models"


def build_definitions(config: KmerlConfig) -> Definitions:
    ingest_job = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.assets(ingest.ECG_SIGNALS),
        description="Ingest one source (or slice) into the signal store.",
    )
    extract_job = define_asset_job(
        EXTRACT_JOB,
        selection=AssetSelection.assets(extraction.REPORT_KNOWLEDGE),
        description="Re-extract one source's reports (after a prompt or model change).",
    )
    per_source_job = define_asset_job(
        PER_SOURCE_JOB,
        selection=AssetSelection.assets(ingest.ECG_SIGNALS, extraction.REPORT_KNOWLEDGE),
        description="Ingest one source (or slice) and extract the knowledge in its reports.",
    )

    train_job = define_asset_job(
        TRAIN_JOB,
        selection=AssetSelection.assets(features.FEATURE_STORE, training.KMERL_ENCODER, evaluation.ENCODER_EVALUATION),
        description="Build the feature store from every source, pretrain the encoder, evaluate it.",
    )
    compare_job = define_asset_job(
        COMPARE_JOB,
        selection=AssetSelection.assets(comparison.MODEL_COMPARISON),
        description="Pretrain and evaluate K-MERL, the MERL-style baseline and the ablations on the same data.",
    )

    @schedule(job=per_source_job, cron_schedule=config.orchestration.refresh_cron, name="nightly_refresh")
    def nightly_refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
        """Re-run every per-source stage. Unchanged inputs are reused (content-addressed
        shards, extraction cache), so this only does the work something stale needs."""
        return [RunRequest(run_key=key, partition_key=key) for key in config.partition_keys]

    knowledge_dir = config.store_root / "report_knowledge"
    audit_file = (knowledge_dir if is_local(knowledge_dir) else config.home) / "audit.duckdb"
    stages = Definitions.merge(
        ingest.definitions(config),
        extraction.definitions(config),
        features.definitions(config),
        training.definitions(config),
        evaluation.definitions(config),
        comparison.definitions(config),
    )
    return Definitions.merge(
        stages,
        Definitions(
            jobs=[ingest_job, extract_job, per_source_job, train_job, compare_job],
            schedules=[nightly_refresh],
            sensors=[automation_sensor(config.orchestration.evaluation_interval_seconds)],
            resources={
                "storage": StorageResource(root=str(config.store_root), runs=str(config.runs_dir)),
                "pipes": PipesSubprocessClient(),
                "extractor": ExtractorResource.from_config(config.extraction, config.home),
                "audit": AuditDatabaseResource(path=str(audit_file)),
            },
            executor=executor_for(config.orchestration, gpu_steps(stages)),
        ),
    )


defs = build_definitions(KmerlConfig())
