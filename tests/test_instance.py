"""The local Dagster instance: one step per pool, run monitoring, and runs of a killed
main run marked failed instead of "started" forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus

from pipeline.instance import fail_orphaned_runs, prepare_instance

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_SLOW_RUN = """
import sys, time
from dagster import DagsterInstance, job, op
from pipeline.instance import process_tags

@op
def wait() -> None:
    print("started", flush=True)
    time.sleep(120)

@job
def slow() -> None:
    wait()

if __name__ == "__main__":
    slow.execute_in_process(instance=DagsterInstance.get(), tags=process_tags())
"""


def test_the_instance_runs_one_step_per_pool_with_run_monitoring_and_keeps_edits(tmp_path: Path) -> None:
    home = prepare_instance(tmp_path / "dagster")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.global_op_concurrency_default_limit == 1  # one vLLM engine, one training at a time
        assert instance.run_monitoring_enabled
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_instance(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_runs_of_a_killed_main_run_are_marked_failed_and_live_ones_left_alone(tmp_path: Path) -> None:
    home = prepare_instance(tmp_path / "dagster")
    script = tmp_path / "slow_run.py"
    script.write_text(_SLOW_RUN)
    env = dict(os.environ, DAGSTER_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT))
    processes = []
    try:
        for _ in range(2):  # one after the other: two processes creating the instance's tables at once collide
            process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stdout is not None and process.stdout.readline().strip() == "started"
        killed, alive = processes
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        with DagsterInstance.from_config(str(home)) as instance:
            runs = {run.tags["kmerl/pid"]: run for run in instance.get_runs()}
            assert {run.status for run in runs.values()} == {DagsterRunStatus.STARTED}  # what the UI showed forever
            assert fail_orphaned_runs(instance) == [runs[str(killed.pid)].run_id]
            statuses = {pid: instance.get_run_by_id(run.run_id).status for pid, run in runs.items()}  # type: ignore[union-attr]
            assert statuses == {str(killed.pid): DagsterRunStatus.FAILURE, str(alive.pid): DagsterRunStatus.STARTED}
            assert fail_orphaned_runs(instance) == []
    finally:
        for process in processes:
            process.kill()
            process.wait()
