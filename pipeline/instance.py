"""The local Dagster instance that the main run and ``make ui`` share.

Its ``dagster.yaml`` is written once, when absent, so a user's edits stay:

- every concurrency pool defaults to one step at a time: one vLLM engine (~5 GB and
  every core) or one training per machine; other partitions queue for the slot;
- run monitoring is on, so the daemon fails a launched run whose worker died.

Runs of the main command execute in its own process, not under the daemon: a killed
``make run`` leaves them "started", so each main run first fails those whose process
is gone (:func:`fail_orphaned_runs`).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kmerl.atomic import write_text_atomic

if TYPE_CHECKING:
    from dagster import DagsterInstance

INSTANCE_SETTINGS: dict[str, object] = {
    "concurrency": {"pools": {"default_limit": 1}},
    "run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
}
# Tags of the main run's runs: which process on which machine executes them.
PROCESS_TAG = "kmerl/pid"
HOST_TAG = "kmerl/host"


def prepare_instance(dagster_home: Path) -> Path:
    """The instance folder, with kmerl's ``dagster.yaml`` written if it has none."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    if not settings.exists():
        header = "# Written by kmerl when absent (pipeline/instance.py); edits are kept.\n"
        write_text_atomic(settings, header + yaml.safe_dump(INSTANCE_SETTINGS, sort_keys=False))
    return dagster_home


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes in process."""
    return {PROCESS_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_orphaned_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the started runs of main-run processes on this machine that no longer
    exist; returns their run ids."""
    from dagster import DagsterRunStatus, RunsFilter

    started = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={HOST_TAG: socket.gethostname()}))
    orphaned = [run for run in started if not _alive(int(run.tags.get(PROCESS_TAG, "0")))]
    for run in orphaned:
        instance.report_run_failed(run, f"its process ({run.tags[PROCESS_TAG]}) ended without finishing the run")
    return [run.run_id for run in orphaned]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


if __name__ == "__main__":  # `make ui`: prepare the instance it is given
    print(prepare_instance(Path(sys.argv[1])))
