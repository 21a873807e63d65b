"""Pretraining: AdamW + warm-up/cosine, gradient accumulation, mixed precision, DDP, exact resume.

A run writes into its run directory (:mod:`kmerl.model.runs`). Every epoch starts
from seeds derived from (seed, epoch, rank), so a run killed at any point and
started again with the same arguments continues from its last checkpoint to
exactly the weights an uninterrupted run reaches.

As a command (what the orchestration launches, also under ``torchrun``)::

    python -m kmerl.model.train --features <feature store> --out <run dir> [--config train.json] [--pipes]

Step and epoch metrics go to the run's ``metrics.jsonl`` and, with ``--pipes``, to
Dagster; the terminal shows a progress bar, and the command prints one JSON line
with the result when it is done.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

from kmerl.atomic import write_text_atomic
from kmerl.console import StageBars
from kmerl.features import FeatureSplit, FeatureStore
from kmerl.features.dataset import Batch, FeatureDataset, whole_batch
from kmerl.hashing import stable_hash
from kmerl.model import checkpoint
from kmerl.model.config import TrainConfig
from kmerl.model.determinism import deterministic_algorithms
from kmerl.model.distributed import Distributed, init_distributed, resolve_device
from kmerl.model.network import KmerlModel
from kmerl.model.runs import Metrics, RunDirectory, read_metrics, run_key, step_progress
from kmerl.storage import StorePath

log = logging.getLogger(__name__)

MetricsCallback = Callable[[Metrics], None]


@dataclass(frozen=True, slots=True)
class TrainResult:
    out_dir: Path
    model_path: Path
    run_key: str
    feature_store_version: str
    epochs: int
    steps: int
    history: list[Metrics] = field(default_factory=list)  # one entry per epoch

    @property
    def final(self) -> Metrics:
        return self.history[-1] if self.history else {}


def train(
    config: TrainConfig,
    feature_store_dir: StorePath | str,
    out_dir: Path,
    on_metrics: MetricsCallback | None = None,
    feature_store_version: str | None = None,
) -> TrainResult:
    """Pretrain on the feature store's training split; resume if ``out_dir`` holds checkpoints.

    Under ``torchrun`` each process trains on its shard of every epoch and rank 0
    alone writes files and calls ``on_metrics`` (with dicts whose ``event`` is
    ``"step"`` or ``"epoch"``).
    """
    context = init_distributed()
    try:
        with deterministic_algorithms(config.deterministic):
            return _Trainer(config, feature_store_dir, out_dir, on_metrics, feature_store_version, context).run()
    finally:
        context.close()


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seeds that depend on the epoch only, never on history: what makes resume exact."""
    torch.manual_seed(int(stable_hash(seed, epoch, rank, length=4), 16))


def warmup_cosine(step: int, total: int, warmup: int, floor: float) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class _Trainer:
    def __init__(
        self,
        config: TrainConfig,
        feature_store_dir: StorePath | str,
        out_dir: Path,
        on_metrics: MetricsCallback | None,
        feature_store_version: str | None,
        context: Distributed,
    ) -> None:
        self.config = config
        self.context = context
        self.device = resolve_device(config.device, context)
        self.autocast_dtype = _autocast_dtype(config.precision, self.device)
        self.run_dir = RunDirectory(out_dir)
        self.on_metrics = on_metrics if context.is_main else None
        self.store = FeatureStore.open(feature_store_dir, feature_store_version)
        manifest = self.store.manifest
        # Checked before anything is built: the message names the settings that disagree.
        self.shape = config.encoder.input_shape(manifest.fs, manifest.samples)
        self.key = run_key(config, self.store.version)

        self.sampler, self.loader = training_loader(self.store, config, context)
        self.steps_per_epoch = len(self.loader) // config.grad_accumulation
        self.total_steps = self.steps_per_epoch * config.epochs

        entities = self.store.entities()
        self.entity_ids = entities.entity_ids
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        embeddings = torch.from_numpy(entities.embeddings)
        self.model = KmerlModel(config, self.shape, manifest.text_dim, embeddings).to(self.device)
        self.step_model: torch.nn.Module = (
            DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if context.enabled
            else self.model
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
        )
        warmup = round(config.optim.warmup_fraction * self.total_steps)
        schedule = partial(warmup_cosine, total=self.total_steps, warmup=warmup, floor=config.optim.min_lr_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.history: list[Metrics] = []
        self.epoch = 0
        self.step = 0
        self._clock = (time.perf_counter(), 0)

    def run(self) -> TrainResult:
        self._claim_directory()
        self._resume()
        self._clock = (time.perf_counter(), self.step)  # for the ETA: this process's pace since (re)start
        for epoch in range(self.epoch, self.config.epochs):
            self._train_epoch(epoch)
        if self.context.is_main and not self.run_dir.model.exists():
            checkpoint.save(self.run_dir.model, checkpoint.model_state(self.model, self.entity_ids, self.store.version))
        self.context.barrier()
        return TrainResult(
            self.run_dir.root,
            self.run_dir.model,
            self.key,
            self.store.version,
            self.epoch,
            self.step,
            list(self.history),
        )

    def _claim_directory(self) -> None:
        """A run directory belongs to one (config, feature store version): never mix two runs."""
        identity = {
            "run_key": self.key,
            "feature_store_version": self.store.version,
            "config": self.config.model_dump(mode="json"),
        }
        if self.run_dir.identity.exists():
            existing = json.loads(self.run_dir.identity.read_text())
            if existing.get("run_key") != self.key:
                raise ValueError(
                    f"{self.run_dir.root} holds run {existing.get('run_key')}, not {self.key} "
                    "(another configuration or feature store version): use a new directory"
                )
        elif self.context.is_main:
            write_text_atomic(self.run_dir.identity, json.dumps(identity, indent=2))
        self.context.barrier()

    def _resume(self) -> None:
        found = checkpoint.epoch_checkpoints(self.run_dir.checkpoints) if self.run_dir.checkpoints.exists() else []
        if found:
            state = checkpoint.load_state(found[-1], self.device)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
            log.info("resuming %s after epoch %d (step %d)", self.run_dir.root, self.epoch, self.step)
        if self.context.is_main:
            # Lines of the epoch that was interrupted describe work that is now redone.
            kept = [entry for entry in read_metrics(self.run_dir.root) if entry["epoch"] <= self.epoch]
            write_text_atomic(self.run_dir.metrics, "".join(json.dumps(entry) + "\n" for entry in kept))

    def _train_epoch(self, epoch: int) -> None:
        config = self.config
        seed_epoch(config.seed, epoch, self.context.rank)
        self.sampler.set_epoch(epoch)
        self.step_model.train()
        sums = torch.zeros(4, dtype=torch.float64)  # total, contrastive, knowledge, samples
        started = window_start = time.perf_counter()
        window_samples = 0
        for micro, batch in enumerate(self.loader):
            if micro >= self.steps_per_epoch * config.grad_accumulation:
                break
            batch = {name: value.to(self.device, non_blocking=True) for name, value in batch.items()}
            last_micro = (micro + 1) % config.grad_accumulation == 0
            with (
                self._sync(last_micro),
                torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None),
            ):
                losses = self.step_model(batch)
            (losses.total / config.grad_accumulation).backward()
            size = len(batch["signal"])
            total = losses.total.detach()
            sums += torch.tensor(
                [float(total) * size, float(losses.contrastive) * size, float(losses.knowledge) * size, size],
                dtype=torch.float64,
            )
            window_samples += size
            if not last_micro:
                continue
            if config.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            if self.step % config.log_every_steps == 0:
                now = time.perf_counter()
                self._report({
                    "event": "step", "epoch": epoch + 1, "step": self.step, "total_steps": self.total_steps,
                    "loss": float(total), "contrastive": float(losses.contrastive),
                    "knowledge": float(losses.knowledge),
                    "lr": self.scheduler.get_last_lr()[0], "temperature": self.model.temperature,
                    "samples_per_s": window_samples * self.context.world_size / (now - window_start),
                    "eta_s": self._eta(now),
                })  # fmt: skip
                window_start, window_samples = now, 0
        totals = self.context.sum(sums.to(self.device)).cpu()  # NCCL reduces device tensors only
        seconds = time.perf_counter() - started
        self.epoch = epoch + 1
        entry: Metrics = {
            "event": "epoch", "epoch": self.epoch, "step": self.step,
            "train_loss": float(totals[0] / totals[3]), "train_contrastive": float(totals[1] / totals[3]),
            "train_knowledge": float(totals[2] / totals[3]), "temperature": self.model.temperature,
            "epoch_seconds": seconds, "samples_per_s": float(totals[3]) / seconds,
        }  # fmt: skip
        if self.context.is_main:
            entry |= self._validation_losses()
        self.history.append(entry)
        self._report(entry)
        self._save_checkpoint()

    def _eta(self, now: float) -> float:
        started, first_step = self._clock
        return (now - started) / max(self.step - first_step, 1) * (self.total_steps - self.step)

    def _sync(self, last_micro: bool) -> AbstractContextManager[object]:
        """DDP averages gradients only on the last micro-batch of an accumulated step."""
        if self.context.enabled and not last_micro:
            return self.step_model.no_sync()  # type: ignore[operator]
        return nullcontext()

    @torch.no_grad()
    def _validation_losses(self) -> Metrics:
        """Losses on the validation split without masking, in fixed batches."""
        if self.config.val_split is None or not self.store.manifest.rows.get(self.config.val_split):
            return {}
        split = self.store.split(self.config.val_split)
        dataset = FeatureDataset(split, _with_reports(split))
        size = self.config.micro_batch_size
        self.model.eval()
        sums = np.zeros(3)
        count = 0
        for start in range(0, len(dataset) - 1, size):
            indices = list(range(start, min(start + size, len(dataset))))
            if len(indices) < 2:
                break
            batch = {name: value.to(self.device) for name, value in dataset.__getitems__(indices).items()}
            with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
                losses = self.model(batch)
            sums += np.array([float(losses.total), float(losses.contrastive), float(losses.knowledge)]) * len(indices)
            count += len(indices)
        self.model.train()
        if not count:
            return {}
        loss, contrastive, knowledge = (float(value) for value in sums / count)
        return {"val_loss": loss, "val_contrastive": contrastive, "val_knowledge": knowledge}

    def _save_checkpoint(self) -> None:
        if self.context.is_main:
            state = {
                "run_key": self.key,
                "epoch": self.epoch,
                "step": self.step,
                "history": self.history,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
            } | checkpoint.model_state(self.model, self.entity_ids, self.store.version)
            checkpoint.save(checkpoint.epoch_file(self.run_dir.checkpoints, self.epoch), state)
            checkpoint.prune(self.run_dir.checkpoints, self.config.keep_checkpoints)
        self.context.barrier()

    def _report(self, metrics: Metrics) -> None:
        if not self.context.is_main:
            return
        with self.run_dir.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        if self.on_metrics is not None:
            self.on_metrics(metrics)


def training_loader(
    store: FeatureStore, config: TrainConfig, context: Distributed | None = None
) -> tuple[DistributedSampler[int], DataLoader[Batch]]:
    """This process's share of each epoch, in micro-batches read one gather at a time."""
    context = context or Distributed()
    split = store.split(config.train_split)
    dataset = FeatureDataset(split, _with_reports(split))
    needed = config.batch_size * context.world_size
    if len(dataset) < needed:
        raise ValueError(
            f"the {config.train_split} split has {len(dataset)} rows with a report; "
            f"one step needs {needed} (batch_size x processes)"
        )
    sampler: DistributedSampler[int] = DistributedSampler(
        dataset, context.world_size, context.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(
        dataset, batch_sampler=BatchSampler(sampler, config.micro_batch_size, drop_last=True), collate_fn=whole_batch
    )
    return sampler, loader


def _with_reports(split: FeatureSplit) -> np.ndarray:
    """Positions of rows with a report: the contrastive loss has nothing to align for the others."""
    return np.flatnonzero(split.column("has_report")) if len(split) else np.empty(0, dtype=np.int64)


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast, or None for fp32. auto: bf16 on CUDA only (on the CPU default, bf16 measured no faster)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kmerl.model.train", description="Pretrain the K-MERL encoder.")
    parser.add_argument("--features", required=True, help="feature store root: a folder or an fsspec URL")
    parser.add_argument("--out", type=Path, required=True, help="run directory (resumed if it holds checkpoints)")
    parser.add_argument("--config", type=Path, help="TrainConfig as JSON (default: KmerlConfig().model.training)")
    parser.add_argument("--feature-version", help="feature store version (default: CURRENT)")
    parser.add_argument("--pipes", action="store_true", help="report to Dagster through Pipes (rank 0 only)")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    _configure_logging(RunDirectory(args.out).log if args.pipes else None, rank)
    config = _load_config(args.config)
    with _reporter(args.pipes, rank == 0) as report:
        result = train(
            config, args.features, args.out, on_metrics=report.metrics, feature_store_version=args.feature_version
        )
        report.done(result)
    return 0


def _configure_logging(log_file: Path | None, rank: int) -> None:
    """Under Pipes the orchestrator's terminal is not ours: log to the run's file; else to stderr."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter(f"%(asctime)s rank {rank} %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.captureWarnings(True)


def _load_config(path: Path | None) -> TrainConfig:
    if path is not None:
        return TrainConfig.model_validate_json(path.read_text())
    from kmerl.config import KmerlConfig  # the settings root reads the environment: only when no file is given

    return KmerlConfig().model.training


class _Reporter:
    """Where the command's metrics go besides ``metrics.jsonl``: Dagster through Pipes, or a
    progress bar on the terminal; rank 0 prints the result as one JSON line when it is done."""

    def __init__(self, pipes: Any | None, bars: StageBars | None) -> None:
        self.pipes = pipes
        self.bar = bars.stage("pretrain") if bars is not None else None
        self.is_main = pipes is not None or bars is not None
        self._started = time.monotonic()

    def metrics(self, metrics: Metrics) -> None:
        if self.pipes is not None:
            self.pipes.report_custom_message(metrics)
            if metrics["event"] == "epoch":
                self.pipes.log.info(f"epoch {metrics['epoch']}: train loss {metrics['train_loss']:.4f}")
        if self.bar is not None and metrics["event"] == "step":
            self.bar(step_progress(metrics, time.monotonic() - self._started))

    def done(self, result: TrainResult) -> None:
        if not self.is_main:
            return
        summary = {
            "run_key": result.run_key, "feature_store_version": result.feature_store_version,
            "epochs": result.epochs, "steps": result.steps, "model_path": str(result.model_path),
        }  # fmt: skip
        final = {key: result.final[key] for key in ("train_loss", "val_loss", "samples_per_s") if key in result.final}
        if self.pipes is not None:
            self.pipes.report_asset_materialization(metadata=summary | final, data_version=result.run_key)
        else:
            print(json.dumps(summary | final), flush=True)


@contextmanager
def _reporter(use_pipes: bool, is_main: bool) -> Iterator[_Reporter]:
    """Under torchrun every rank inherits the Pipes connection and the terminal; only rank 0 uses them."""
    if not is_main:
        yield _Reporter(None, None)
    elif use_pipes:
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as pipes:
            yield _Reporter(pipes, None)
    else:
        with StageBars() as bars:
            yield _Reporter(None, bars)


if __name__ == "__main__":
    sys.exit(main())
