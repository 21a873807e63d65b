"""The Dagster side: assets materialize through a real instance, and the main job runs."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from kmerl.config import KmerlConfig
from pipeline.definitions import defs
from pipeline.defs import build_definitions
from pipeline.defs.jobs import INGEST_JOB
from tests.processes import env_with_venv, wait_for_group_exit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_one_partition_per_sample_source() -> None:
    job = defs.resolve_job_def(INGEST_JOB)
    assert job.partitions_def is not None
    assert job.partitions_def.get_partition_keys() == ["ptbxl", "cinc2021", "wfdb_samples"]


def test_the_on_demand_comparisons_are_drawn_apart_from_the_pipeline_they_do_not_feed() -> None:
    graph = defs.resolve_asset_graph()
    assert graph.all_group_names == {"kmerl", "comparison"}
    on_demand = {key.to_user_string() for key in graph.asset_keys_for_group("comparison")}
    assert on_demand == {"model_comparison", "rotated_evaluation"}


def test_ecg_signals_materializes_with_metadata_checks_and_a_stable_data_version(tmp_path: Path) -> None:
    job = build_definitions(KmerlConfig(home=tmp_path)).resolve_job_def(INGEST_JOB)
    with DagsterInstance.ephemeral() as instance:
        versions = []
        for _ in range(2):
            result = job.execute_in_process(partition_key="wfdb_samples", instance=instance)
            assert result.success
            (event,) = result.asset_materializations_for_node("ecg_signals")
            versions.append(event.tags["dagster/data_version"])
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert checks == {"record_accounting": True, "schema": True}
        metadata = event.metadata
        assert metadata["dagster/row_count"].value == 2 and metadata["quarantined"].value == 0
        assert "data:image/png;base64," in metadata["sample_ecg"].value
        assert "signal" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
        assert versions[0] == versions[1] == metadata["store_version"].value


@pytest.mark.slow
def test_main_job_ingests_every_sample_record(tmp_path: Path) -> None:
    """The README's main command on the embedded defaults; the lexicon stands in for
    the LLM here only to keep the suite fast (the engine paths have their own tests)."""
    env = dict(os.environ, KMERL_HOME=str(tmp_path), PYTHONPATH=str(PROJECT_ROOT), KMERL_EXTRACTION__BACKEND="lexicon")
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.run"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = re.findall(r"^(\w+): (\d+) records -> (\d+) ingested, (\d+) quarantined;", done.stdout, re.M)
    assert {name for name, *_ in counts} == {"ptbxl", "cinc2021", "wfdb_samples"}
    assert sum(int(n) for _, n, _, _ in counts) == 607
    assert all(int(n) == int(i) + int(q) for _, n, i, q in counts)
    assert (tmp_path / "dagster").is_dir() and (tmp_path / "store" / "ecg_signals" / "ptbxl" / "CURRENT").exists()
    # What a person reads: a bar per stage, a summary that fits on a screen, no JSON event stream.
    assert all(
        stage in done.stderr for stage in ("ingest ptbxl", "extract cinc2021", "features", "pretrain", "evaluate")
    )
    assert len(done.stdout.splitlines()) <= 25 and "ptbxl_superclass" in done.stdout
    assert not [line for line in (done.stdout + done.stderr).splitlines() if line.lstrip().startswith("{")]
    (log,) = (tmp_path / "logs").glob("run-*.log")  # ... which goes to the run's log file, and to Dagster
    assert "STEP_SUCCESS" in log.read_text() and "epoch 16: train loss" in log.read_text()


@pytest.mark.slow
def test_killed_materialization_reruns_to_a_complete_store(tmp_path: Path, ptbxl_root: Path) -> None:
    """SIGKILL a `dagster asset materialize` midway, run it again: a complete store,
    no duplicate records, finished shards reused, no partial file left or listed."""
    from kmerl.signals import SignalStore, SourceLayout

    (tmp_path / "kmerl.toml").write_text(
        f'home = "{tmp_path / "home"}"\n\n[[sources]]\nkind = "wfdb_folder"\nname = "px"\n'
        f'root = "{ptbxl_root / "records500"}"\n\n[ingest]\nworkers = 2\nrecords_per_shard = 5\n\n'
        "[ingest.preprocess]\ntarget_fs = 250\n"
    )
    env = env_with_venv(
        KMERL_CONFIG=str(tmp_path / "kmerl.toml"), DAGSTER_HOME=str(tmp_path), PYTHONPATH=str(PROJECT_ROOT)
    )
    command = [
        "dagster",
        "asset",
        "materialize",
        "-m",
        "pipeline.definitions",
        "--select",
        "ecg_signals",
        "--partition",
        "px",
    ]
    layout = SourceLayout(tmp_path / "home" / "store" / "ecg_signals", "px")
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(layout.signals.glob("*.parquet"))) < 4:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the materialization finished before it could be killed"
    wait_for_group_exit(process.pid)
    survivors = {p: p.stat().st_mtime_ns for p in layout.signals.glob("*.parquet")}
    assert layout.versions.current() is None

    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = SignalStore.open(layout.root, sources=["px"])
    assert len(store) == len(set(store.record_ids)) == 500
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in survivors.items())
    listed = {f"{s.key}.parquet" for s in store.manifests[0].shards}
    on_disk = {p.name for p in layout.signals.iterdir()}
    assert listed <= on_disk and not [name for name in on_disk if name.startswith(".")]
