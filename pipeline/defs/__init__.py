"""The Dagster definitions, by concept: assets, resources, jobs, schedules, sensors, executors.

Everything is built from a :class:`~kmerl.config.KmerlConfig`, so tests (and users
with several configurations) can build the same graph over other data.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import Definitions, LoggerDefinition

from assets.shared.resources import StageProgress
from kmerl.config import KmerlConfig
from pipeline.defs.assets import pipeline_assets
from pipeline.defs.executors import executor_for, gpu_steps
from pipeline.defs.jobs import JOBS, archive_jobs
from pipeline.defs.resources import pipeline_resources
from pipeline.defs.schedules import nightly_refresh
from pipeline.defs.sensors import automation_sensor, prompt_sensor, raw_archive_sensor


def build_definitions(
    config: KmerlConfig,
    progress: StageProgress | None = None,
    loggers: Mapping[str, LoggerDefinition] | None = None,
) -> Definitions:
    """The code location for ``config``. ``progress`` shows how far stages are (default: log
    lines); ``loggers`` are the jobs' loggers (the main run's writes its log file)."""
    assets = pipeline_assets(config)
    return Definitions(
        assets=assets,
        jobs=[*JOBS, *archive_jobs(bool(config.evaluation_archives))],
        schedules=[nightly_refresh(config)],
        sensors=[raw_archive_sensor(config), prompt_sensor(config), automation_sensor(config)],
        resources=pipeline_resources(config, progress or StageProgress()),
        executor=executor_for(config.orchestration, gpu_steps(assets)),
        loggers=loggers,
    )
