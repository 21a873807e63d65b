"""The main job, end to end, through the Dagster instance (``make run``).

Runs are recorded in ``$DAGSTER_HOME`` (default ``<home>/dagster``), so the UI
started with ``make ui`` shows them, and a second run reuses everything unchanged.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from kmerl.config import KmerlConfig
from pipeline.metadata import metadata_values

if TYPE_CHECKING:
    from dagster import ExecuteInProcessResult

# Progress lines, not Dagster's per-event debug stream (the UI keeps the full log).
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def main() -> int:
    config = KmerlConfig()
    dagster_home = config.home / "dagster"
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home))
    # The engine's configuration dump each time a partition starts it buries the
    # progress lines; warnings and errors still show (set it to INFO to see it all).
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    dagster_home.mkdir(parents=True, exist_ok=True)

    from dagster import DagsterInstance

    from pipeline.definitions import PER_SOURCE_JOB, TRAIN_JOB, build_definitions

    instance = DagsterInstance.get()
    defs = build_definitions(config)
    failed = []
    for partition in config.partition_keys:
        result = defs.resolve_job_def(PER_SOURCE_JOB).execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False, run_config=_QUIET
        )
        if not result.success:
            failed.append(partition)
            continue
        print(_summary(partition, result))
    if failed:
        print(f"failed partitions: {failed}", file=sys.stderr)
        return 1
    result = defs.resolve_job_def(TRAIN_JOB).execute_in_process(
        instance=instance, raise_on_error=False, run_config=_QUIET
    )
    if not result.success:
        print(f"{TRAIN_JOB} failed (run {result.run_id})", file=sys.stderr)
        return 1
    print(_training_summary(result))
    return 0


def _summary(partition: str, result: ExecuteInProcessResult) -> str:
    signals = _metadata(result, "ecg_signals")
    knowledge = _metadata(result, "report_knowledge")
    return (
        f"{partition}: {signals['records_in']} records -> {signals['dagster/row_count']} ingested, "
        f"{signals['quarantined']} quarantined; {knowledge['distinct_reports']} distinct reports -> "
        f"{knowledge['extracted']} extracted, {knowledge['cached']} cached, {knowledge['quarantined']} quarantined "
        f"({knowledge['model']})"
    )


def _training_summary(result: ExecuteInProcessResult) -> str:
    features = _metadata(result, "feature_store")
    encoder = _metadata(result, "kmerl_encoder")
    evaluation = _metadata(result, "encoder_evaluation")
    return (
        f"feature store {features['feature_store_version']}: {features['dagster/row_count']} rows; "
        f"encoder {encoder['run_key']}: {encoder['epochs']} epochs, model {encoder['model_path']}\n"
        f"evaluation ({evaluation['results']}):\n{evaluation['results_table']}"
    )


def _metadata(result: ExecuteInProcessResult, node: str) -> dict[str, object]:
    (materialization,) = result.asset_materializations_for_node(node)
    return metadata_values(materialization.metadata)


if __name__ == "__main__":
    sys.exit(main())
