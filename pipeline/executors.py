"""Where a run's steps execute: local processes, or one Kubernetes pod per step.

The pools name what steps contend for across runs, so a deployment can cap them
(``dagster instance concurrency set gpu 1``); unset pools are unlimited.
"""

from __future__ import annotations

from dagster import ExecutorDefinition, multiprocess_executor

from kmerl.config import OrchestrationConfig

LLM_POOL = "llm"  # steps that send reports to the extraction backend
GPU_POOL = "gpu"  # steps that train encoders

# Steps that run torchrun: on Kubernetes their pod asks for one GPU per process.
TRAINING_STEPS = ("kmerl_encoder", "model_comparison")


def executor_for(orchestration: OrchestrationConfig) -> ExecutorDefinition:
    """The multiprocess executor, or dagster-k8s' job executor (the ``cluster`` extra);
    the pod image, namespace and secrets come from the run launcher in dagster.yaml."""
    if orchestration.executor == "multiprocess":
        return multiprocess_executor.configured({"max_concurrent": orchestration.max_concurrent_steps})
    from dagster_k8s import k8s_job_executor  # only installed where Kubernetes runs the steps

    gpus = {"limits": {"nvidia.com/gpu": str(orchestration.training.nproc_per_node)}}
    return k8s_job_executor.configured(
        {
            "max_concurrent": orchestration.max_concurrent_steps,
            "per_step_k8s_config": {step: {"container_config": {"resources": gpus}} for step in TRAINING_STEPS},
        }
    )
