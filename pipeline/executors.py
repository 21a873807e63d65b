"""Where a run's steps execute: local processes, or one Kubernetes pod per step.

The pools name what steps contend for across runs, so a deployment can cap them
(``dagster instance concurrency set gpu 1``); unset pools are unlimited.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, Definitions, ExecutorDefinition, multiprocess_executor

from kmerl.config import OrchestrationConfig

LLM_POOL = "llm"  # steps that send reports to the extraction backend
GPU_POOL = "gpu"  # steps that train encoders


def gpu_steps(stages: Definitions) -> list[str]:
    """The steps of the assets in the GPU pool: those that run torchrun."""
    return [
        asset.node_def.name
        for asset in stages.assets or []
        if isinstance(asset, AssetsDefinition) and asset.node_def.pool == GPU_POOL
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
