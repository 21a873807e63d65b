"""Every folder the pipeline reads and writes, decided in one place.

::

    <home>/store/                  the stores, unless ``store`` puts them on an fsspec URL
        ecg_signals/<source>/      signal store (kmerl.signals)
        report_knowledge/          knowledge store (kmerl.extraction.store; `kmerl audit` reads it)
        feature_store/             feature store (kmerl.features)
        kmerl_encoder/             training runs (kmerl.model.runs), when the stores are local
            comparison/            model_comparison: variants' runs per seed (the MERL-style reference too), tables
    <home>/runs/                   training runs when the stores are remote (runs need a file system)
    <home>/models/                 LLMs converted for vLLM
    <home>/cache/vllm/             vLLM's compile and download cache
    <home>/dagster/                the Dagster instance (DAGSTER_HOME of the main run and ``make ui``)
    <home>/experiments/            ``python -m kmerl.model.experiments``: its feature store, runs and tables
    <home>/logs/                   log files of the main run
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from kmerl.storage import is_local, store_path


@dataclass(frozen=True, slots=True)
class HomeLayout:
    home: Path
    store: str | None = None  # a folder or fsspec URL for the stores; default <home>/store

    @property
    def store_root(self) -> UPath:
        return store_path(self.store) if self.store else store_path(self.home / "store")

    @property
    def signal_store(self) -> UPath:
        return self.store_root / "ecg_signals"

    @property
    def knowledge_store(self) -> UPath:
        return self.store_root / "report_knowledge"

    @property
    def feature_store(self) -> UPath:
        return self.store_root / "feature_store"

    @property
    def runs(self) -> Path:
        """Training runs resume from checkpoints in place: beside the stores when those are local."""
        return Path(self.store_root / "kmerl_encoder") if is_local(self.store_root) else self.home / "runs"

    @property
    def comparison(self) -> Path:
        """The comparison of variants; its ``runs/`` also holds the evaluation's MERL-style reference."""
        return self.runs / "comparison"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def vllm_cache(self) -> Path:
        return self.home / "cache" / "vllm"

    @property
    def dagster(self) -> Path:
        return self.home / "dagster"

    @property
    def experiments(self) -> Path:
        return self.home / "experiments"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def paths(self) -> dict[str, str]:
        """Every path by name, as ``kmerl home`` prints them."""
        names = (
            "store_root", "signal_store", "knowledge_store", "feature_store", "runs", "comparison",
            "models", "vllm_cache", "dagster", "experiments", "logs",
        )  # fmt: skip
        return {name: str(getattr(self, name)) for name in names}
