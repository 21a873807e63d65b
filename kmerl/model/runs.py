"""Training runs: one directory per run, and the finished ones as a versioned store.

::

    <root>/<run key>/run.json                    the configuration and feature store version the run trains
    <root>/<run key>/train_config.json           the configuration as the training command reads it
    <root>/<run key>/checkpoints/epoch-NNNN.pt   model, optimiser, schedule and history after each epoch
    <root>/<run key>/metrics.jsonl               step and epoch metrics, one JSON object per line
    <root>/<run key>/train.log                   the training command's log
    <root>/<run key>/model.pt                    the final weights and what is needed to rebuild the model
    <root>/versions/<run key>.json               manifest of a finished run (kmerl.versioned_store)
    <root>/CURRENT                               the run evaluation reads by default

A run's key hashes its configuration and feature store version: a finished run is
found again instead of retrained, and a killed one resumes in its directory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmerl.hashing import stable_hash
from kmerl.model.config import TrainConfig
from kmerl.progress import Progress
from kmerl.versioned_store import Manifest, VersionedStore

Metrics = dict[str, Any]


class RunDirectory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.identity = root / "run.json"
        self.config_file = root / "train_config.json"
        self.checkpoints = root / "checkpoints"
        self.metrics = root / "metrics.jsonl"
        self.log = root / "train.log"
        self.model = root / "model.pt"


def run_key(config: TrainConfig, feature_store_version: str) -> str:
    """Identity of a run: what it trains on and how. Use it to name run directories."""
    return stable_hash(config.run_key, feature_store_version)


def read_metrics(run_dir: Path) -> list[Metrics]:
    """The metrics a run wrote, in order (a line still being written is left out)."""
    path = RunDirectory(run_dir).metrics
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def step_progress(metrics: Metrics, elapsed_s: float) -> Progress:
    """A step entry of the metrics as progress in optimiser steps."""
    detail = f"epoch {metrics['epoch']}, loss {metrics['loss']:.3f}"
    return Progress(int(metrics["step"]), int(metrics["total_steps"]), elapsed_s, "steps", detail)


@contextmanager
def following_steps(run_dir: Path, on_step: Callable[[Metrics], None], interval_s: float = 1.0) -> Iterator[None]:
    """Call ``on_step`` with the latest step entry of a run that another process is training.

    Dagster Pipes hands a run's custom messages to the orchestrator only once the
    process has ended; the metrics file the trainer appends to is the live view.
    """
    stop = threading.Event()

    def poll() -> None:
        latest: Metrics | None = None
        while not stop.wait(interval_s):
            steps = [entry for entry in read_metrics(run_dir) if entry["event"] == "step"]
            if steps and steps[-1] != latest:
                latest = steps[-1]
                on_step(latest)

    thread = threading.Thread(target=poll, name="following-steps", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class RunManifest(Manifest):
    """A finished run; its version is the run key."""

    format: int = 1
    feature_store_version: str
    config: TrainConfig
    epochs: int
    steps: int
    final: dict[str, float]  # the last epoch's losses and throughput


class RunStore:
    """Training runs under ``root``, a local or mounted folder (runs resume from checkpoints in place)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions = VersionedStore(self.root, RunManifest)

    def run(self, key: str) -> RunDirectory:
        return RunDirectory(self.root / key)

    def publish(self, key: str) -> RunManifest:
        """Make the finished run ``key`` the current one."""
        run = self.run(key)
        if not run.model.exists():
            raise FileNotFoundError(f"run {key} has not finished: no {run.model}")
        identity = json.loads(run.identity.read_text())
        epochs = [entry for entry in read_metrics(run.root) if entry["event"] == "epoch"]
        last = epochs[-1] if epochs else {}
        manifest = RunManifest(
            version=key,
            created_at=datetime.now(UTC),
            feature_store_version=identity["feature_store_version"],
            config=TrainConfig.model_validate(identity["config"]),
            epochs=len(epochs),
            steps=int(last.get("step", 0)),
            final={name: float(last[name]) for name in ("train_loss", "val_loss", "samples_per_s") if name in last},
        )
        self.versions.publish(manifest)
        return manifest

    def current(self) -> RunManifest:
        try:
            return self.versions.load()
        except FileNotFoundError:
            raise FileNotFoundError(f"no finished training run is published under {self.root}") from None

    def model_file(self, manifest: RunManifest) -> Path:
        return self.run(manifest.version).model
