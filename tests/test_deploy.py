"""The cluster configuration in deploy/: the Dagster instance (Postgres, queued runs,
Kubernetes run launcher) validates, kmerl's settings (object storage, a vLLM server,
torchrun on GPUs, one pod per step) build the pipeline, and its model and training
settings train at its 500 Hz on a local store."""

import math
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInvalidConfigError, instance_for_test, job, op, validate_run_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage

from assets.shared.pools import GPU_POOL, LLM_POOL
from kmerl.config import CONFIG_ENV, KmerlConfig
from kmerl.features import FeatureStore, build_feature_store, entities_from_labels, label_vocabulary
from kmerl.ingest import ingest_source
from kmerl.model.checkpoint import load_model
from kmerl.model.config import TrainConfig
from kmerl.model.runs import read_metrics
from kmerl.model.train import train
from kmerl.signals import SignalStore
from kmerl.sources import PtbXlSource
from pipeline.defs import build_definitions
from pipeline.defs.executors import gpu_steps
from pipeline.defs.jobs import TRAIN_JOB
from tests.model_fixtures import TEXT_ENCODER

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


def _instance_settings() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def _config_errors(pluggable: type, config: dict) -> list[str]:  # type: ignore[type-arg]
    """Errors of ``config`` under a pluggable class's schema, as Dagster validates run config."""

    @op(name="settings", config_schema=pluggable.config_type())  # type: ignore[attr-defined]
    def settings() -> None: ...

    @job(name="validate")
    def validate() -> None:
        settings()

    try:
        validate_run_config(validate, {"ops": {"settings": {"config": config}}})
    except DagsterInvalidConfigError as error:
        return [e.message for e in error.errors]
    return []


# Enough for the Kubernetes client to start outside a cluster; nothing connects to it.
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: cluster, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: kmerl, user: {token: none}}]
contexts: [{name: kmerl, context: {cluster: cluster, user: kmerl}}]
current-context: kmerl
"""


def test_the_instance_config_validates_with_its_pluggable_classes(cluster_env: None, tmp_path: Path) -> None:
    settings = _instance_settings()
    assert _config_errors(DagsterPostgresStorage, settings["storage"]["postgres"]) == []
    # The instance starts from every other section as a pod's would (its storage needs the
    # cluster's Postgres), the run launcher with a kubeconfig instead of in-cluster credentials.
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    launcher = settings["run_launcher"]
    outside = {"load_incluster_config": False, "kubeconfig_file": str(tmp_path / "kubeconfig")}
    overrides = {k: v for k, v in settings.items() if k != "storage"}
    overrides["run_launcher"] = launcher | {"config": launcher["config"] | outside}
    with instance_for_test(overrides=overrides) as instance:
        assert isinstance(instance.run_launcher, K8sRunLauncher)
        assert instance.run_launcher.job_namespace == "kmerl"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled


def test_a_broken_launcher_config_is_refused(cluster_env: None) -> None:
    """The check above can fail: a misspelt key is an error."""
    config = _instance_settings()["run_launcher"]["config"]
    assert _config_errors(K8sRunLauncher, {**config, "job_namespac": "x"})


def test_the_cluster_settings_build_the_pipeline_on_kubernetes(cluster_env: None) -> None:
    config = KmerlConfig()
    assert config.store == "s3://kmerl-data/store" and str(config.layout.signal_store).startswith("s3://")
    assert config.extraction.backend == "server" and str(config.extraction.server.url).startswith("http://vllm.")
    assert config.orchestration.training.distributed and config.model.training.encoder.width == 192
    # 0.1 s patches: 50 samples at the cluster's 500 Hz, 100 of them per 10 s record
    assert config.model.training.encoder.input_shape(500, 5000).patches == 100
    assert len(config.partition_keys) == 65  # 64 MIMIC-IV-ECG slices and PTB-XL

    defs = build_definitions(config)
    job_def = defs.resolve_job_def(TRAIN_JOB)
    assert job_def.executor_def.name == "k8s"
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    assert pools["kmerl_encoder"] == {GPU_POOL} and pools["report_knowledge"] == {LLM_POOL}
    # Every step that pretrains asks its pod for a GPU.
    assert sorted(gpu_steps(list(defs.assets or []))) == ["kmerl_encoder", "model_comparison", "rotated_evaluation"]


@pytest.mark.slow
def test_the_cluster_model_and_training_settings_train_at_500_hz_on_a_local_store(
    cluster_env: None, ptbxl_root: Path, tmp_path: Path
) -> None:
    """deploy/kmerl.toml with a local store: its 500 Hz ingest, its paper-size encoder and its
    training settings, on one slice of the sample PTB-XL records for a few steps."""
    source = PtbXlSource(name="ptbxl", root=ptbxl_root, slices=4)
    config = KmerlConfig(home=tmp_path, store=str(tmp_path / "store"), sources=[source])
    preprocess, encoder = config.ingest.preprocess, config.model.training.encoder
    assert preprocess.target_fs == 500 and encoder.width == 192 and encoder.depth == 12

    layout = config.layout
    ingest_source(source, layout.signal_store, config.ingest.model_copy(update={"workers": 2}), partition="ptbxl.000")
    signals = SignalStore.open(layout.signal_store, access="parquet")
    vocabulary = label_vocabulary(source.scp_statements_file)
    record_entities = entities_from_labels(signals.metadata(["record_id", "labels"]).collect(), vocabulary)
    build_feature_store(signals, record_entities, vocabulary, layout.feature_store, TEXT_ENCODER)
    features = FeatureStore.open(layout.feature_store)
    assert (features.manifest.fs, features.manifest.samples) == (500, 5000)

    budget = {"epochs": 1, "batch_size": 4, "train_split": "test", "val_split": None, "log_every_steps": 1}
    training = TrainConfig.model_validate(config.model.training.model_dump() | budget)
    result = train(training, layout.feature_store, layout.runs / "run")

    steps = [m for m in read_metrics(result.out_dir) if m["event"] == "step"]
    assert result.steps >= 2 and [m["step"] for m in steps] == list(range(1, result.steps + 1))
    assert all(math.isfinite(m["loss"]) for m in steps)
    model = load_model(result.model_path)
    assert model.shape.patch_size == 50 and model.shape.patches == 100  # 0.1 s patches at 500 Hz
    assert model.config.encoder == encoder
