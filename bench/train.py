"""Training throughput, and the loader measured against the training step (bench/README.md, "Training").

    PYTHONPATH=$PWD python -m bench.train [--features DIR] [--steps 12]

Both are measured in the same run on the same feature store: samples/s of the
default configuration's training step (masking, both losses, AdamW), and batches/s
of the training loader alone; their ratio says whether the loader could ever be
the bottleneck (target: >= 5). On a CUDA machine the paper-size encoder is
measured too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from kmerl.config import KmerlConfig
from kmerl.features import FeatureStore
from kmerl.model.config import EncoderConfig, TrainConfig
from kmerl.model.network import KmerlModel
from kmerl.model.train import training_loader


def _batches(loader: torch.utils.data.DataLoader, epoch: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        loader.batch_sampler.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        yield from loader
        epoch += 1


class _Stepper:
    """One configuration's model and optimiser, stepping on batches it is given."""

    def __init__(self, store: FeatureStore, config: TrainConfig, device: torch.device) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.device = device
        entities = torch.from_numpy(store.entities().embeddings)
        shape = config.encoder.input_shape(store.manifest.fs, store.manifest.samples)
        self.model = KmerlModel(config, shape, store.manifest.text_dim, entities).to(device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.optim.lr)
        cuda_bf16 = config.precision == "auto" and device.type == "cuda"
        self.dtype = torch.bfloat16 if config.precision == "bf16" or cuda_bf16 else None

    def __call__(self, batch: dict[str, torch.Tensor], seed: int) -> float:
        torch.use_deterministic_algorithms(self.config.deterministic, warn_only=True)
        torch.manual_seed(seed)  # the same masks for every configuration at this step
        batch = {name: value.to(self.device) for name, value in batch.items()}
        self._sync()
        started = time.perf_counter()
        with torch.autocast(self.device.type, self.dtype, enabled=self.dtype is not None):
            losses = self.model(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        self.optimizer.step()
        self._sync()
        return time.perf_counter() - started

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def step_seconds(
    store: FeatureStore, configs: dict[str, TrainConfig], steps: int, device: torch.device
) -> dict[str, list[float]]:
    """Per-step wall times, the configurations taking turns on the same batches and masks.

    Taking turns step by step exposes every configuration to the same load from
    other processes on a shared machine, so their ratios are fair even when the
    absolute times drift. Two warm-up steps are not counted.
    """
    steppers = {name: _Stepper(store, config, device) for name, config in configs.items()}
    _, loader = training_loader(store, next(iter(configs.values())))
    batches = _batches(loader)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for step in range(steps + 2):
        batch = next(batches)
        for name, stepper in steppers.items():
            elapsed = stepper(batch, seed=step)
            if step >= 2:
                times[name].append(elapsed)
    return times


def loader_seconds(store: FeatureStore, config: TrainConfig, batches: int) -> list[float]:
    """Wall time per batch of the training loader alone (a fresh epoch: cold page cache aside)."""
    _, loader = training_loader(store, config)
    stream = _batches(loader, epoch=1)
    times = []
    for _ in range(batches):
        started = time.perf_counter()
        next(stream)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, help="feature store (default: the pipeline's, after make run)")
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    kmerl = KmerlConfig()
    store = FeatureStore.open(args.features or kmerl.layout.feature_store)
    base = kmerl.model.training
    store.split(base.train_split).warm()

    report: dict[str, object] = {"torch_threads": torch.get_num_threads(), "feature_store": store.version}
    configs = {
        "default (fp32, deterministic)": base,
        "bf16 autocast": base.model_copy(update={"precision": "bf16"}),
        "non-deterministic kernels": base.model_copy(update={"deterministic": False}),
    }
    times = step_seconds(store, configs, args.steps, torch.device("cpu"))
    reference = times["default (fp32, deterministic)"]
    for name, config in configs.items():
        median = statistics.median(times[name])
        report[name] = {
            "step_s_median": median,
            "samples_per_s": config.batch_size / median,
            "time_vs_default": statistics.median(t / r for t, r in zip(times[name], reference, strict=True)),
        }
    load = statistics.median(loader_seconds(store, base, 50))
    step = report["default (fp32, deterministic)"]["step_s_median"]  # type: ignore[index]
    report["loader"] = {
        "batch_s_median": load,
        "samples_per_s": base.micro_batch_size / load,
        "step_over_loader": step / load,
    }
    if torch.cuda.is_available():
        paper = {"paper": base.model_copy(update={"encoder": EncoderConfig.paper(), "batch_size": 128})}
        gpu = step_seconds(store, paper, args.steps, torch.device("cuda"))["paper"]
        report["paper size on GPU (bf16, batch 128)"] = {"samples_per_s": 128 / statistics.median(gpu)}
    else:
        report["paper size on GPU"] = "no CUDA device: not measured"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
