"""Concurrency pools: what steps contend for across runs.

A deployment caps them (``dagster instance concurrency set gpu 1``); unset pools are unlimited.
"""

LLM_POOL = "llm"  # steps that send reports to the extraction backend
GPU_POOL = "gpu"  # steps that train encoders
