"""Where a run's steps execute: local processes, or one Kubernetes pod per step."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, ExecutorDefinition, SourceAsset, multiprocess_executor

from assets.shared.pools import GPU_POOL
from kmerl.config import OrchestrationConfig


def gpu_steps(assets: Sequence[AssetsDefinition | SourceAsset]) -> list[str]:
    """The steps of the assets in the GPU pool: those that run torchrun."""
    return [
        asset.node_def.name
        for asset in assets
        if isinstance(asset, AssetsDefinition) and GPU_POOL in asset.node_def.pools
    ]


def executor_for(orchestration: OrchestrationConfig, training_steps: Sequence[str]) -> ExecutorDefinition:
    """The multiprocess executor, or dagster-k8s' job executor (the ``cluster`` extra),
    whose pods for ``training_steps`` ask for one GPU per training process; the pod image,
    namespace and secrets come from the run launcher in dagster.yaml."""
    if orchestration.executor == "multiprocess":
        return multiprocess_executor.configured({"max_concurrent": orchestration.max_concurrent_steps})
    from dagster_k8s import k8s_job_executor  # only installed where Kubernetes runs the steps

    gpus = {"limits": {"nvidia.com/gpu": str(orchestration.training.nproc_per_node)}}
    return k8s_job_executor.configured(
        {
            "max_concurrent": orchestration.max_concurrent_steps,
            "per_step_k8s_config": {step: {"container_config": {"resources": gpus}} for step in training_steps},
        }
    )
