"""Stage 4: pretraining the K-MERL encoder, launched through Dagster Pipes.

The training process is a subprocess (``python -m kmerl.model.train``), or
``torchrun`` when the launch configuration asks for several processes; its rank 0
streams per-epoch log lines and reports the materialization back through Pipes.
"""

import sys
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DataVersion,
    Definitions,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)

from assets.features import FEATURE_STORE
from kmerl.atomic import write_text_atomic
from kmerl.config import KmerlConfig, TrainingLaunchConfig
from kmerl.features import FeatureStore
from kmerl.model.config import TrainConfig
from kmerl.model.plots import loss_curves
from kmerl.model.train import RunDirectory, read_metrics, run_key
from pipeline.automation import ON_UPSTREAM_OR_CODE_CHANGE
from pipeline.executors import GPU_POOL
from pipeline.metadata import png_markdown
from pipeline.partitions import PIPELINE_GROUP
from pipeline.resources import StorageResource

KMERL_ENCODER = AssetKey("kmerl_encoder")


def definitions(config: KmerlConfig) -> Definitions:
    training = config.model.training

    @asset(
        key=KMERL_ENCODER,
        deps=[FEATURE_STORE],
        code_version=training.run_key[:16],
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        pool=GPU_POOL,
        kinds={"pytorch"},
    )
    def kmerl_encoder(
        context: AssetExecutionContext, storage: StorageResource, pipes: PipesSubprocessClient
    ) -> MaterializeResult:
        """The pretrained lead-aware ECG encoder (and the query network), trained on the
        current feature store; a finished run with the same configuration and
        feature store is reused, a killed one resumes from its last checkpoint."""
        features = FeatureStore.open(storage.feature_store)
        key = run_key(training, features.version)
        run = RunDirectory(storage.run_dir(key))
        if run.model.exists():
            context.log.info(f"run {key} already finished: reusing {run.model}")
            return MaterializeResult(metadata=_metadata(run, key, features.version), data_version=DataVersion(key))
        config_file = run.root / "train_config.json"
        write_text_atomic(config_file, training.model_dump_json(indent=2))
        command = training_command(
            config.orchestration.training, storage.feature_store, run.root, config_file, features.version
        )
        context.log.info(f"launching: {' '.join(command)}")
        reported = pipes.run(command=command, context=context).get_materialize_result()
        metadata = {**reported.metadata, **_metadata(run, key, features.version)}
        return MaterializeResult(metadata=metadata, data_version=reported.data_version or DataVersion(key))

    return Definitions(assets=[kmerl_encoder])


def training_command(
    launch: TrainingLaunchConfig, features: Path, run_dir: Path, config_file: Path, feature_version: str
) -> list[str]:
    """The training command: one process, or torchrun over ``nproc_per_node`` x ``nnodes``."""
    module = [
        "-m", "kmerl.model.train",
        "--features", str(features), "--out", str(run_dir), "--config", str(config_file),
        "--feature-version", feature_version, "--pipes",
    ]  # fmt: skip
    if not launch.distributed:
        return [sys.executable, *module]
    torchrun = [
        sys.executable, "-m", "torch.distributed.run",
        f"--nproc-per-node={launch.nproc_per_node}", f"--nnodes={launch.nnodes}",
    ]  # fmt: skip
    if launch.rdzv_endpoint:
        torchrun += ["--rdzv-backend=c10d", f"--rdzv-endpoint={launch.rdzv_endpoint}"]
    else:
        torchrun += ["--standalone"]
    return [*torchrun, *module]


def _metadata(run: RunDirectory, key: str, feature_version: str) -> dict[str, object]:
    metrics = read_metrics(run.root)
    epochs = [m for m in metrics if m["event"] == "epoch"]
    final = epochs[-1] if epochs else {}
    metadata: dict[str, object] = {
        "run_key": key,
        "feature_store_version": feature_version,
        "model_path": MetadataValue.path(str(run.model)),
        "epochs": len(epochs),
        "parameters": TrainConfig.model_validate_json(
            (run.root / "train_config.json").read_text()
        ).encoder.model_dump(),
    }
    for name in ("train_loss", "val_loss", "samples_per_s"):
        if name in final:
            metadata[name] = float(final[name])
    if metrics:
        metadata["loss_curves"] = png_markdown(loss_curves({"kmerl": metrics}), "loss curves")
    return metadata
