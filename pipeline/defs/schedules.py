"""The nightly refresh: every per-source stage, where something is stale."""

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from kmerl.config import KmerlConfig
from pipeline.defs.jobs import per_source


def nightly_refresh(config: KmerlConfig) -> ScheduleDefinition:
    @schedule(job=per_source, cron_schedule=config.orchestration.refresh_cron, name="nightly_refresh")
    def refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
        """Re-run every per-source stage. Unchanged inputs are reused (content-addressed
        shards, extraction cache), so this only does the work something stale needs."""
        return [RunRequest(run_key=key, partition_key=key) for key in config.partition_keys]

    return refresh
