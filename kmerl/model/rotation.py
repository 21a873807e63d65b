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

With ``--references`` the MERL-style baseline is pretrained and the supervised model
trained on every fold's training records too, and scored on the same records; with
``--seeds`` all of it runs once per seed, and a table gives the mean and spread over
seeds and K-MERL's paired difference to each reference per seed (``rotation.md``).

As a command, on the configured signal store and the pipeline's current knowledge
(``make run`` first)::

    python -m kmerl.model.rotation [--folds 5] [--seeds 0 1 2] [--references]

and in Dagster as the on-demand ``rotated_evaluation`` asset (job ``rotate_folds``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.atomic import write_text_atomic
from kmerl.features import FeatureStore, build_feature_store
from kmerl.hashing import stable_hash
from kmerl.model.config import EvaluationConfig, TrainConfig
from kmerl.model.evaluation import EvalTask, Evaluation, evaluate_encoder, read_evaluation, write_evaluation
from kmerl.model.evaluation.evaluate import DIFFERENCE_SCHEMA, RESULT_SCHEMA, differences_between
from kmerl.model.evaluation.metrics import macro_auroc
from kmerl.model.evaluation.table import seeds_report
from kmerl.model.experiments import MERL_BASELINE, train_reference
from kmerl.model.runs import Metrics
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


@dataclass(frozen=True, slots=True)
class RotationInputs:
    """What every rotation builds its feature store and evaluation from."""

    signal_store: SignalStore
    record_entities: pl.DataFrame
    vocabulary: pl.DataFrame
    tasks: list[EvalTask]
    text_encoder: TextEncoder


def rotate(
    inputs: RotationInputs,
    base: TrainConfig,
    evaluation: EvaluationConfig,
    out_dir: Path,
    folds: int = 5,
    on_metrics: MetricsCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Evaluation, Path]:
    """Pretrain and evaluate once per rotation fold (each resumable under ``out_dir``),
    then write the pooled evaluation; returns it and its folder (``out_dir/pooled-<key>``).

    The references the evaluation settings ask for are trained per fold on that fold's
    training records too: the MERL-style baseline (``merl_reference``) with the same
    budget and seed, the supervised model (``supervised_reference``) on its labels."""
    if folds < 2:
        raise ValueError("a rotation needs at least 2 folds")
    rotations = rotation_folds(inputs.signal_store.metadata(["record_id", "fold"]).collect(), folds)
    one_split = [task.model_copy(update={"fit_splits": ("train",), "test_splits": ("test",)}) for task in inputs.tasks]
    evaluation_key = stable_hash(evaluation, [task.model_dump(mode="json") for task in one_split], length=16)
    parts = []
    for rotation in range(folds):
        folder = out_dir / f"rotation-{rotation}"
        manifest = build_feature_store(
            inputs.signal_store, inputs.record_entities, inputs.vocabulary, folder / "feature_store",
            inputs.text_encoder, splits=rotation_splits(rotations, rotation, folds),
        )  # fmt: skip
        store = FeatureStore.open(folder / "feature_store", manifest.version)
        run_dir = folder / f"run-{run_key(base, manifest.version)[:12]}"
        tagged = _tagged(on_metrics, rotation)
        model = train(base, folder / "feature_store", run_dir, tagged, manifest.version)
        references = (
            {MERL_BASELINE: train_reference(MERL_BASELINE, base, folder / "feature_store", folder, manifest.version,
                                            tagged)}
            if evaluation.merl_reference
            else {}
        )  # fmt: skip
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
                inputs.text_encoder,
                evaluation,
                MODEL_NAME,
                eval_dir,
                on_progress=on_progress,
                references=references,
            )
        )
    pooled = pool(parts, evaluation)
    key = stable_hash(base, evaluation, folds, [p.results.select("model", "task", "macro_auroc").rows() for p in parts])
    pooled_dir = out_dir / f"pooled-{key[:16]}"
    write_evaluation(pooled, pooled_dir)
    return pooled, pooled_dir


@dataclass(frozen=True, slots=True)
class SeededRotation:
    results: pl.DataFrame  # every seed's pooled evaluation rows (column ``seed``)
    differences: pl.DataFrame  # K-MERL minus each reference, paired over all records, per seed (column ``seed``)
    markdown: Path  # rotation.md: mean and spread over seeds, then the first seed's table with intervals


def rotate_seeds(
    inputs: RotationInputs,
    base: TrainConfig,
    evaluation: EvaluationConfig,
    out_dir: Path,
    folds: int,
    seeds: Sequence[int],
    on_metrics: MetricsCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> SeededRotation:
    """:func:`rotate` once per seed (pretraining, the references and the evaluation's own
    randomness all seeded by it, under ``out_dir/seed-<s>``), and the table over seeds.
    The supervised reference, an upper bound rather than a rival, is trained for the
    first seed only, as in the comparison of variants."""
    results, differences = [], []
    for seed in seeds:
        settings = evaluation.model_copy(
            update={"seed": seed, "supervised_reference": evaluation.supervised_reference and seed == seeds[0]}
        )
        pooled, _ = rotate(
            inputs, base.model_copy(update={"seed": seed}), settings, out_dir / f"seed-{seed}", folds,
            _seeded(on_metrics, seed), on_progress,
        )  # fmt: skip
        results.append(pooled.results.with_columns(seed=pl.lit(seed)))
        differences.append(pooled.differences.with_columns(seed=pl.lit(seed)))
    rotation = SeededRotation(pl.concat(results), pl.concat(differences), out_dir / "rotation.md")
    markdown = seeds_report(rotation.results, rotation.differences, MODEL_NAME, evaluation.confidence)
    write_text_atomic(rotation.markdown, markdown)
    return rotation


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
    mine = scores.filter(pl.col("model") == MODEL_NAME)
    differences = [
        row
        for reference in scores["model"].unique(maintain_order=True)
        if reference != MODEL_NAME
        for row in differences_between(mine, scores.filter(pl.col("model") == reference), config)
    ]
    return Evaluation(
        pl.DataFrame(results, schema=RESULT_SCHEMA), scores, pl.DataFrame(differences, schema=DIFFERENCE_SCHEMA)
    )


def _tagged(on_metrics: MetricsCallback | None, rotation: int) -> MetricsCallback | None:
    if on_metrics is None:
        return None
    return lambda metrics: on_metrics({"rotation": rotation} | metrics)


def _seeded(on_metrics: MetricsCallback | None, seed: int) -> MetricsCallback | None:
    if on_metrics is None:
        return None
    return lambda metrics: on_metrics({"seed": seed} | metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kmerl.model.rotation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, help="default: the configuration's evaluation.rotation_folds (5)")
    parser.add_argument("--seeds", nargs="+", type=int, help="pretrain and evaluate once per seed; a table over them")
    parser.add_argument(
        "--references", action="store_true", help="also the MERL-style baseline and the supervised model, per fold"
    )
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
    signals = SignalStore.open(config.layout.signal_store, access="parquet", sources=sources)
    knowledge = KnowledgeStore(config.layout.knowledge_store)
    evaluation = config.model.evaluation
    if args.references:
        evaluation = evaluation.model_copy(update={"merl_reference": True, "supervised_reference": True})
    inputs = RotationInputs(
        signals, knowledge.record_entities(sources), load_vocabulary(config.extraction.vocabulary).frame(),
        tasks_for_sources(config.sources), MiniLmEncoder(),
    )  # fmt: skip
    arguments = (
        inputs, config.model.training, evaluation, args.out or config.layout.experiments / "rotation",
        args.folds or evaluation.rotation_folds,
    )  # fmt: skip

    def on_metrics(m: Metrics) -> None:
        if m["event"] == "epoch":
            log.info("%s epoch %s: loss %.4f", _run_label(m), m["epoch"], m["train_loss"])

    if args.seeds:
        print(rotate_seeds(*arguments, seeds=args.seeds, on_metrics=on_metrics).markdown.read_text())
    else:
        pooled, _ = rotate(*arguments, on_metrics=on_metrics)
        print(results_markdown(pooled.results, pooled.differences, evaluation.confidence))
    return 0


def _run_label(metrics: Metrics) -> str:
    """``seed 1 rotation 3 merl_baseline``: which of a rotation's runs a metrics event is from."""
    seed = f"seed {metrics['seed']} " if "seed" in metrics else ""
    return f"{seed}rotation {metrics['rotation']} {metrics.get('variant', MODEL_NAME)}"


if __name__ == "__main__":
    sys.exit(main())
