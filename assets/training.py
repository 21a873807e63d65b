"""Stage 4: pretraining the K-MERL encoder, launched through Dagster Pipes.

The training process is a subprocess (``python -m kmerl.model.train``), or
``torchrun`` when the launch configuration asks for several processes; its rank 0
reports epochs to the run log and the materialization back through Pipes. A
finished run is published in the run store, where evaluation finds it.
"""

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    ResourceParam,
    asset,
)
from upath import UPath

from assets.shared.automation import ON_UPSTREAM_OR_CODE_CHANGE
from assets.shared.keys import FEATURE_STORE, KMERL_ENCODER
from assets.shared.metadata import MetadataDict, inline_chart, png_markdown, rounded
from assets.shared.partitions import PIPELINE_GROUP
from assets.shared.pools import GPU_POOL
from assets.shared.resources import StageProgress, StorageResource
from kmerl.atomic import write_text_atomic
from kmerl.config import KmerlConfig, TrainingLaunchConfig
from kmerl.features import FeatureStore
from kmerl.inline_charts import colour_legend, line_chart
from kmerl.model.plots import loss_curves
from kmerl.model.runs import Metrics, RunManifest, RunStore, following_steps, read_metrics, run_key, step_progress
from kmerl.progress import Progress


def build_assets(config: KmerlConfig) -> list[AssetsDefinition]:
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
        context: AssetExecutionContext,
        storage: StorageResource,
        pipes: PipesSubprocessClient,
        progress: ResourceParam[StageProgress],
    ) -> MaterializeResult:
        """The pretrained lead-aware ECG encoder (and the query network), trained on the
        current feature store; a finished run with the same configuration and
        feature store is reused, a killed one resumes from its last checkpoint."""
        layout = storage.layout
        features = FeatureStore.open(layout.feature_store)
        runs = RunStore(layout.runs)
        key = run_key(training, features.version)
        run = runs.run(key)
        if run.model.exists():
            context.log.info(f"run {key} already finished: reusing {run.model}")
            manifest = runs.publish(key)
            return MaterializeResult(metadata=_metadata(runs, manifest), data_version=DataVersion(key))
        write_text_atomic(run.config_file, training.model_dump_json(indent=2))
        command = training_command(
            config.orchestration.training, layout.feature_store, run.root, run.config_file, features.version
        )
        context.log.info(f"launching: {' '.join(command)}")
        report = progress.reporter(context, "pretrain", log=False)  # the run logs its epochs through Pipes
        started = time.monotonic()

        def on_step(step: Metrics) -> None:
            report(step_progress(step, time.monotonic() - started))

        with following_steps(run.root, on_step):
            reported = pipes.run(command=command, context=context).get_materialize_result()
        manifest = runs.publish(key)
        loss = manifest.final.get("train_loss", float("nan"))
        report(Progress(manifest.steps, manifest.steps, time.monotonic() - started, "steps", f"loss {loss:.3f}"))
        metadata = {**(reported.metadata or {}), **_metadata(runs, manifest)}
        return MaterializeResult(metadata=metadata, data_version=reported.data_version or DataVersion(key))

    return [kmerl_encoder]


def training_command(
    launch: TrainingLaunchConfig, features: UPath, run_dir: Path, config_file: Path, feature_version: str
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


def _metadata(runs: RunStore, manifest: RunManifest) -> MetadataDict:
    metrics = read_metrics(runs.run(manifest.version).root)
    # The loss chart drawn in place first: what the page opens on.
    metadata: MetadataDict = {"loss_chart": _loss_chart(metrics)} if metrics else {}
    metadata |= {
        "run_key": manifest.version,
        "feature_store_version": manifest.feature_store_version,
        "model_path": MetadataValue.path(str(runs.model_file(manifest))),
        "epochs": manifest.epochs,
        "parameters": manifest.config.encoder.model_dump(),
        **rounded(manifest.final, 4),
    }
    if metrics:
        metadata["loss_curves"] = png_markdown(loss_curves({"kmerl": metrics}), "loss curves")
    return metadata


def _loss_chart(metrics: Sequence[Metrics]) -> MetadataValue:
    """Training loss per logged step and validation loss per epoch, drawn in place."""
    training = [(float(m["step"]), float(m["loss"])) for m in metrics if m["event"] == "step"]
    epochs = [m for m in metrics if m["event"] == "epoch" and "val_loss" in m]
    series = {"training": training, "validation": [(float(m["step"]), float(m["val_loss"])) for m in epochs]}
    caption = f"loss per optimiser step ({colour_legend(list(series))})"
    if training:
        (first_step, first), (last_step, last) = training[0], training[-1]
        caption += f": {first:.3f} at step {first_step:.0f}, {last:.3f} at {last_step:.0f}"
    return inline_chart(line_chart(series), caption)
