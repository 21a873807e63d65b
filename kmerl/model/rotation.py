"""Every labelled record scored once: pretraining and evaluation rotated over test folds.

One run's held-out split scores a few dozen records (the sample's PTB-XL fold 10: 66),
too few to tell a pretrained encoder from an untrained one. Here the records are dealt
into ``folds`` rotation folds — PTB-XL records by their stratified fold, which keeps a
patient's ECGs together, other records by a hash of their id — and for each fold the
encoder is pretrained from scratch on the others (the next fold as its validation
split). That fold is then scored as a test split: zero-shot directly, probes fitted on
the labels of the folds the encoder trained on, the untrained twin beside it. No record
is scored by an encoder that saw its report. The per-record scores of all folds are
pooled into one table over every labelled record, with bootstrap intervals and paired
differences over all of them.

As a command, on the configured signal store and the pipeline's current knowledge
(``make run`` first)::

    python -m kmerl.model.rotation [--folds 5]

and in Dagster as the on-demand ``rotated_evaluation`` asset (job ``rotate_folds``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import polars as pl

from kmerl.features import FeatureStore, build_feature_store
from kmerl.hashing import stable_hash
from kmerl.model.config import EvaluationConfig, TrainConfig
from kmerl.model.evaluation import EvalTask, Evaluation, evaluate_encoder, read_evaluation, write_evaluation
from kmerl.model.evaluation.evaluate import DIFFERENCE_SCHEMA, RESULT_SCHEMA, UNTRAINED, differences_between
from kmerl.model.evaluation.metrics import macro_auroc
from kmerl.model.train import MetricsCallback, run_key, train
from kmerl.progress import ProgressCallback
from kmerl.signals import SignalStore
from kmerl.text_encoder import TextEncoder

log = logging.getLogger(__name__)

MODEL_NAME = "kmerl"


def rotation_folds(metadata: pl.DataFrame, folds: int) -> pl.DataFrame:
    """``record_id, rotation`` for ``metadata`` (record_id, fold): a record with an
    archive fold goes by it, any other by a hash of its id."""
    hashed = [int(stable_hash(record_id, length=8), 16) % folds for record_id in metadata["record_id"]]
    return metadata.select(
        "record_id",
        rotation=pl.when(pl.col("fold").is_not_null())
        .then((pl.col("fold").cast(pl.Int64) - 1) % folds)
        .otherwise(pl.Series(hashed, dtype=pl.Int64)),
    )


def rotation_splits(rotations: pl.DataFrame, rotation: int, folds: int) -> pl.DataFrame:
    """``record_id, split``: ``rotation`` is the test split, the next fold validation (from
    3 folds on; with 2 the other fold is all training), the rest training."""
    validation = (rotation + 1) % folds if folds >= 3 else -1
    return rotations.select(
        "record_id",
        split=pl.when(pl.col("rotation") == rotation)
        .then(pl.lit("test"))
        .when(pl.col("rotation") == validation)
        .then(pl.lit("val"))
        .otherwise(pl.lit("train")),
    )


def rotate(
    signal_store: SignalStore,
    record_entities: pl.DataFrame,
    vocabulary: pl.DataFrame,
    tasks: list[EvalTask],
    text_encoder: TextEncoder,
    base: TrainConfig,
    evaluation: EvaluationConfig,
    out_dir: Path,
    folds: int = 5,
    on_metrics: MetricsCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Evaluation, Path]:
    """Pretrain and evaluate once per rotation fold (each resumable under ``out_dir``),
    then write the pooled evaluation; returns it and its folder (``out_dir/pooled-<key>``)."""
    if folds < 2:
        raise ValueError("a rotation needs at least 2 folds")
    rotations = rotation_folds(signal_store.metadata(["record_id", "fold"]).collect(), folds)
    settings = evaluation.model_copy(update={"supervised_reference": False})  # not pooled over rotations
    one_split = [task.model_copy(update={"fit_splits": ("train",), "test_splits": ("test",)}) for task in tasks]
    evaluation_key = stable_hash(settings, [task.model_dump(mode="json") for task in one_split], length=16)
    parts = []
    for rotation in range(folds):
        folder = out_dir / f"rotation-{rotation}"
        manifest = build_feature_store(
            signal_store, record_entities, vocabulary, folder / "feature_store", text_encoder,
            splits=rotation_splits(rotations, rotation, folds),
        )  # fmt: skip
        store = FeatureStore.open(folder / "feature_store", manifest.version)
        run_dir = folder / f"run-{run_key(base, manifest.version)[:12]}"
        model = train(base, folder / "feature_store", run_dir, _tagged(on_metrics, rotation), manifest.version)
        log.info("rotation %d of %d: %s test records", rotation + 1, folds, manifest.rows.get("test", 0))
        eval_dir = run_dir / f"evaluation-{evaluation_key}"
        if (eval_dir / "results.parquet").exists():
            parts.append(read_evaluation(eval_dir))
            continue
        parts.append(
            evaluate_encoder(
                model.model_path,
                store,
                one_split,
                text_encoder,
                settings,
                MODEL_NAME,
                eval_dir,
                on_progress=on_progress,
            )
        )
    pooled = pool(parts, settings)
    key = stable_hash(base, settings, folds, [p.results.select("model", "task", "macro_auroc").rows() for p in parts])
    pooled_dir = out_dir / f"pooled-{key[:16]}"
    write_evaluation(pooled, pooled_dir)
    return pooled, pooled_dir


def pool(parts: list[Evaluation], config: EvaluationConfig) -> Evaluation:
    """One evaluation from the rotations' per-record scores: per (model, task, lead subset,
    method), the classes every rotation scored, over all their records."""
    scores = pl.concat([part.scores for part in parts])
    keys = ["model", "task", "lead_subset", "method"]
    seen = pl.concat([part.scores.select(*keys, "class").unique() for part in parts])
    shared = seen.group_by(*keys, "class").len().filter(pl.col("len") == len(parts)).drop("len")
    scores = scores.join(shared, on=[*keys, "class"]).sort([*keys, "class", "record_id"])
    fitted: dict[tuple[str, ...], int] = {}
    for part in parts:  # the smallest probe fit over the rotations
        for row in part.results.iter_rows(named=True):
            group = tuple(row[k] for k in keys)
            fitted[group] = min(fitted.get(group, row["n_fit"]), row["n_fit"])
    results = []
    for group, rows in scores.group_by(keys, maintain_order=True):
        classes = rows["class"].unique(maintain_order=True).to_list()
        shape = (len(classes), rows.height // len(classes))  # sorted by class, then record
        labels, values = (rows[c].to_numpy().reshape(shape).T for c in ("label", "score"))
        metric = macro_auroc(labels, values, config.bootstrap, config.confidence, config.seed)
        results.append({
            **dict(zip(keys, group, strict=True)), "macro_auroc": metric.value, "ci_low": metric.low,
            "ci_high": metric.high, "n_fit": fitted.get(tuple(group), 0), "n_test": shape[1],
            "n_classes": len(classes), "classes": classes, "class_auroc": list(metric.per_class),
        })  # fmt: skip
    differences = differences_between(
        scores.filter(pl.col("model") == MODEL_NAME), scores.filter(pl.col("model") == UNTRAINED), config
    )
    return Evaluation(
        pl.DataFrame(results, schema=RESULT_SCHEMA), scores, pl.DataFrame(differences, schema=DIFFERENCE_SCHEMA)
    )


def _tagged(on_metrics: MetricsCallback | None, rotation: int) -> MetricsCallback | None:
    if on_metrics is None:
        return None
    return lambda metrics: on_metrics({"rotation": rotation} | metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kmerl.model.rotation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, help="default: the configuration's evaluation.rotation_folds (5)")
    parser.add_argument("--out", type=Path, help="default: <home>/experiments/rotation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from kmerl.config import KmerlConfig
    from kmerl.extraction.store import KnowledgeStore
    from kmerl.extraction.vocabulary import load_vocabulary
    from kmerl.model.evaluation import results_markdown, tasks_for_sources
    from kmerl.text_encoder import MiniLmEncoder

    config = KmerlConfig()
    sources = config.partition_keys
    signals = SignalStore.open(config.layout.signal_store, sources=sources, access="parquet")
    knowledge = KnowledgeStore(config.layout.knowledge_store)
    pooled, _ = rotate(
        signals, knowledge.record_entities(sources), load_vocabulary(config.extraction.vocabulary).frame(),
        tasks_for_sources(config.sources), MiniLmEncoder(), config.model.training, config.model.evaluation,
        args.out or config.layout.experiments / "rotation", args.folds or config.model.evaluation.rotation_folds,
        on_metrics=lambda m: log.info("rotation %s epoch %s: loss %.4f", m["rotation"], m["epoch"], m["train_loss"])
        if m["event"] == "epoch" else None,
    )  # fmt: skip
    print(results_markdown(pooled.results, pooled.differences, config.model.evaluation.confidence))
    return 0


if __name__ == "__main__":
    sys.exit(main())
