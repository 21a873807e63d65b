"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs``.

Everything is built from a :class:`~kmerl.config.KmerlConfig`, so tests (and users
with several configurations) can build the same graph over other data.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    multiprocess_executor,
    schedule,
)

from assets import ingest
from kmerl.config import KmerlConfig
from pipeline.automation import automation_sensor
from pipeline.resources import StorageResource

INGEST_JOB = "ingest_sources"


def build_definitions(config: KmerlConfig) -> Definitions:
    ingest_job = define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.assets(ingest.ECG_SIGNALS),
        description="Ingest one source archive into the signal store.",
    )

    @schedule(job=ingest_job, cron_schedule=config.orchestration.refresh_cron, name="nightly_refresh")
    def nightly_refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
        """Re-run every per-source stage. Unchanged inputs are reused (content-addressed
        shards, extraction cache), so this only does the work something stale needs."""
        return [RunRequest(run_key=key, partition_key=key) for key in config.partition_keys]

    return Definitions.merge(
        ingest.definitions(config),
        Definitions(
            jobs=[ingest_job],
            schedules=[nightly_refresh],
            sensors=[automation_sensor(config.orchestration.evaluation_interval_seconds)],
            resources={"storage": StorageResource(root=str(config.store_root))},
            executor=multiprocess_executor.configured({"max_concurrent": config.orchestration.max_concurrent_steps}),
        ),
    )


defs = build_definitions(KmerlConfig())
