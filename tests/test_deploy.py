"""The cluster configuration in deploy/ loads and validates: the Dagster instance
(Postgres, queued runs, Kubernetes run launcher) and kmerl's own settings
(object storage, a vLLM server, torchrun on GPUs, one pod per step)."""

from pathlib import Path

import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData
from dagster._serdes.config_class import class_from_code_pointer

from kmerl.config import CONFIG_ENV, KmerlConfig
from pipeline.definitions import TRAIN_JOB, build_definitions
from pipeline.executors import GPU_POOL, LLM_POOL, gpu_steps

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture
def cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DAGSTER_POSTGRES_HOST": "postgres.kmerl.svc.cluster.local",
        "DAGSTER_POSTGRES_USER": "dagster",
        "DAGSTER_POSTGRES_PASSWORD": "secret",
        "KMERL_IMAGE": "registry.example.org/kmerl:0.1.0",
        CONFIG_ENV: str(DEPLOY / "kmerl.toml"),
    }.items():
        monkeypatch.setenv(name, value)


def test_the_instance_config_validates_with_its_pluggable_classes(cluster_env: None) -> None:
    config, custom_instance_class = dagster_instance_config(str(DEPLOY))
    assert custom_instance_class is None
    assert "postgres" in config["storage"]
    for component in ("run_launcher", "run_coordinator"):
        entry = config[component]
        result = process_config(_configurable_class(entry).config_type(), entry.get("config", {}))
        assert result.success, (component, [error.message for error in result.errors or []])
    assert config["run_launcher"]["class"] == "K8sRunLauncher"


def test_a_broken_launcher_config_is_refused(cluster_env: None) -> None:
    """The check above can fail: a misspelt key is an error."""
    config, _ = dagster_instance_config(str(DEPLOY))
    entry = config["run_launcher"]
    assert not process_config(
        _configurable_class(entry).config_type(), {**entry["config"], "job_namespac": "x"}
    ).success


def _configurable_class(entry: dict) -> type:  # type: ignore[type-arg]
    """The class a dagster.yaml entry names, as the instance resolves it (dagster.core -> dagster._core)."""
    data = ConfigurableClassData(entry["module"], entry["class"], "{}")
    return class_from_code_pointer(data.module_name, data.class_name)


def test_the_cluster_settings_build_the_pipeline_on_kubernetes(cluster_env: None) -> None:
    config = KmerlConfig()
    assert config.store == "s3://kmerl-data/store" and str(config.signal_store).startswith("s3://")
    assert config.extraction.backend == "server" and config.extraction.server.url.startswith("http://vllm.")
    assert config.orchestration.training.distributed and config.model.training.encoder.width == 192
    assert len(config.partition_keys) == 65  # 64 MIMIC-IV-ECG slices and PTB-XL

    defs = build_definitions(config)
    job = defs.resolve_job_def(TRAIN_JOB)
    assert job.executor_def.name == "k8s"
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools["kmerl_encoder"] == {GPU_POOL} and pools["report_knowledge"] == {LLM_POOL}
    assert sorted(gpu_steps(defs)) == ["kmerl_encoder", "model_comparison"]  # their pods ask for GPUs
