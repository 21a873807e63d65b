"""The main job, end to end, through the Dagster instance (``make run``).

Runs are recorded in ``$DAGSTER_HOME`` (default ``<home>/dagster``), so the UI
started with ``make ui`` shows them, and a second run reuses everything unchanged.
"""

from __future__ import annotations

import os
import sys

from kmerl.config import KmerlConfig


# Progress lines, not Dagster's per-event debug stream (the UI keeps the full log).
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def main() -> int:
    config = KmerlConfig()
    dagster_home = config.home / "dagster"
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home))
    dagster_home.mkdir(parents=True, exist_ok=True)

    from dagster import DagsterInstance

    from pipeline.definitions import INGEST_JOB, build_definitions

    instance = DagsterInstance.get()
    job = build_definitions(config).resolve_job_def(INGEST_JOB)
    failed = []
    for partition in config.partition_keys:
        result = job.execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False, run_config=_QUIET
        )
        if not result.success:
            failed.append(partition)
            continue
        (materialization,) = result.asset_materializations_for_node("ecg_signals")
        meta = {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
        print(
            f"{partition}: {meta['records_in']} records -> {meta['dagster/row_count']} ingested, "
            f"{meta['quarantined']} quarantined (run {result.run_id})"
        )
    if failed:
        print(f"failed partitions: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
