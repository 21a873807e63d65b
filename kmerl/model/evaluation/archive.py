"""Evaluating a trained encoder on an archive it never saw (``kmerl evaluate``).

The archive is ingested into a signal store of its own, at the encoder's sampling rate,
under ``<home>/evaluation/<name>/``: it is never LLM-extracted, never enters the
pretraining feature store and never triggers training. Its records' own labels define
the task (PTB-XL superclasses, or Challenge diagnoses by SNOMED CT code, abbreviation or
name). Every labelled record is scored: zero-shot directly, probes out of fold
(``EvaluationConfig.archive_folds``); with ``archive_folds = 0`` the source's own splits
decide which records fit the probes and which are scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.features import FeatureConfig, FeatureStore, build_feature_store
from kmerl.hashing import stable_hash
from kmerl.ingest import IngestConfig, ingest_source
from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation.evaluate import Evaluation, evaluate_encoder
from kmerl.model.evaluation.tasks import tasks_for_sources
from kmerl.progress import ProgressCallback
from kmerl.signals import SignalStore
from kmerl.sources import ChallengeSource, PtbXlSource
from kmerl.text_encoder import TextEncoder


class ArchiveError(ValueError):
    """An archive or encoder that cannot be evaluated; the message says why."""


@dataclass(frozen=True, slots=True)
class EncoderInput:
    """What a trained encoder expects of its input, read from its file."""

    fs: int
    seconds: float
    entity_ids: tuple[str, ...]


def read_encoder_input(model_path: Path) -> EncoderInput:
    """The sampling rate, window and vocabulary an encoder file was trained with; a clear
    error for a file that is missing, truncated or not an encoder."""
    from kmerl.model.checkpoint import load_state

    if not model_path.is_file():
        raise ArchiveError(f"{model_path}: no encoder file there (train one with `make run`)")
    try:
        state = load_state(model_path)
        fs, samples = int(state["input"]["fs"]), int(state["input"]["samples"])
        entity_ids = tuple(state["entity_ids"])
    except Exception as error:  # torch raises several kinds for a truncated or foreign file
        raise ArchiveError(f"{model_path}: not a readable kmerl encoder ({type(error).__name__}: {error})") from error
    return EncoderInput(fs, samples / fs, entity_ids)


def ingest_for(expected: EncoderInput, ingest: IngestConfig | None = None) -> IngestConfig:
    """``ingest`` with the sampling rate and window the encoder was trained on."""
    ingest = ingest or IngestConfig()
    preprocess = ingest.preprocess.model_copy(update={"target_fs": expected.fs, "window_seconds": expected.seconds})
    return ingest.model_copy(update={"preprocess": preprocess})


def evaluate_archive(
    source: PtbXlSource | ChallengeSource,
    model_path: Path,
    home: Path,
    text_encoder: TextEncoder,
    config: EvaluationConfig | None = None,
    ingest: IngestConfig | None = None,
    on_progress: ProgressCallback | None = None,
    references: Mapping[str, Path] | None = None,
) -> tuple[Evaluation, Path]:
    """Zero-shot, probe and lead-subset tables of the encoder at ``model_path`` on ``source``
    (beside ``references``, other trained encoders, as in :func:`evaluate_encoder`);
    returns the evaluation and the folder its tables were written to."""
    config = config or EvaluationConfig()
    expected = read_encoder_input(model_path)
    root = home / "evaluation" / source.name
    manifest = ingest_source(source, root / "signals", ingest_for(expected, ingest), on_progress=on_progress)
    if manifest.ingested == 0:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in manifest.quarantine_reasons.items())
        raise ArchiveError(
            f"{source.name}: none of its {manifest.records_in} records could be ingested"
            + (f" (quarantined: {reasons})" if reasons else "")
        )
    signals = SignalStore.open(root / "signals", sources=[source.name], access="parquet")
    no_knowledge = pl.DataFrame(schema={"record_id": pl.String, "entity_id": pl.String, "status": pl.String})
    vocabulary = pl.DataFrame({"entity_id": expected.entity_ids, "name": expected.entity_ids})
    features = build_feature_store(
        signals, no_knowledge, vocabulary, root / "features", text_encoder, FeatureConfig(), on_progress=on_progress
    )
    (task,) = tasks_for_sources([source])
    store = FeatureStore.open(root / "features", features.version)
    scored_splits = tuple(store.manifest.rows) if config.archive_folds else task.test_splits
    if not any(store.manifest.rows.get(split) for split in scored_splits):
        raise ArchiveError(f"{source.name}: no record is in a split to score ({', '.join(scored_splits)})")
    encoders = {"model": model_path, **(references or {})}
    identities = {
        name: (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns) for name, path in encoders.items()
    }
    key = stable_hash(identities, features.version, config, task.model_dump(mode="json"), length=16)
    out_dir = root / f"results-{key}"
    evaluation = evaluate_encoder(
        model_path, store, [task], text_encoder, config, out_dir=out_dir, on_progress=on_progress,
        folds=config.archive_folds, references=references,
    )  # fmt: skip
    if evaluation.results.is_empty():
        raise ArchiveError(
            f"{source.name}: no class has {config.min_test_positives} positive test records; nothing to score"
        )
    return evaluation, out_dir
