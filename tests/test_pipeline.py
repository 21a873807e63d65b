"""The Dagster side: assets materialize through a real instance, and the main job runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, materialize

from assets.ingest import ecg_signals, source_partitions
from pipeline.definitions import defs
from pipeline.resources import StorageResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_one_partition_per_sample_source() -> None:
    assert source_partitions.get_partition_keys() == ["ptbxl", "cinc2021", "wfdb_samples"]
    assert defs.resolve_job_def("ingest_sources") is not None


def test_ecg_signals_materializes_with_metadata_and_a_stable_data_version(tmp_path: Path) -> None:
    with DagsterInstance.ephemeral() as instance:
        versions = []
        for _ in range(2):
            result = materialize(
                [ecg_signals],
                partition_key="wfdb_samples",
                resources={"storage": StorageResource(root=str(tmp_path))},
                instance=instance,
            )
            assert result.success
            (event,) = result.asset_materializations_for_node("ecg_signals")
            versions.append(event.tags["dagster/data_version"])
        metadata = event.metadata
        assert metadata["dagster/row_count"].value == 2 and metadata["quarantined"].value == 0
        assert "data:image/png;base64," in metadata["sample_ecg"].value
        assert "signal" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
        assert versions[0] == versions[1] == metadata["store_version"].value


def test_main_job_ingests_every_sample_record(tmp_path: Path) -> None:
    env = dict(os.environ, KMERL_HOME=str(tmp_path), PYTHONPATH=str(PROJECT_ROOT))
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.run"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = re.findall(r"^(\w+): (\d+) records -> (\d+) ingested, (\d+) quarantined", done.stdout, re.M)
    assert {name for name, *_ in counts} == {"ptbxl", "cinc2021", "wfdb_samples"}
    assert sum(int(n) for _, n, _, _ in counts) == 607
    assert all(int(n) == int(i) + int(q) for _, n, i, q in counts)
    assert (tmp_path / "dagster").is_dir() and (tmp_path / "store" / "ecg_signals" / "ptbxl" / "CURRENT").exists()
