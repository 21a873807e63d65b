"""K-MERL against a MERL-style baseline and two ablations, on the same data and budget.

Variants of one base configuration (same epochs, batch, optimiser, seed):

    kmerl            per-lead tokens, lead + segment masking, contrastive + knowledge loss
    merl_baseline    one joint token per time patch (absent leads zero-filled), no masking, contrastive only
    no_knowledge     kmerl without the cardiac query network's loss
    no_lead_masking  kmerl without dynamic lead masking (segment masking kept)

Each variant trains into its own run directory per seed (resumable) and is evaluated
once; the tables (mean and spread over seeds, paired differences per seed), the plots
and the wall times are written beside them.

As a command, on the configured signal store (``kmerl ingest`` first)::

    python -m kmerl.model.experiments [--variants kmerl merl_baseline ...] [--seeds 0 1 2]
                                      [--record-entities F --vocabulary F]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.atomic import atomic_write, write_text_atomic
from kmerl.features import FeatureStore
from kmerl.hashing import stable_hash
from kmerl.model.config import EvaluationConfig, TrainConfig
from kmerl.model.evaluation import EvalTask, evaluate_encoder, read_evaluation
from kmerl.model.evaluation.evaluate import DIFFERENCE_SCHEMA, ZERO_SHOT_TEXT, differences_between, probe_method
from kmerl.model.evaluation.table import seeds_report
from kmerl.model.plots import loss_curves, partial_lead_chart, roc_curves
from kmerl.model.train import MetricsCallback, read_metrics, run_key, train
from kmerl.progress import ProgressCallback
from kmerl.storage import StorePath
from kmerl.text_encoder import TextEncoder

log = logging.getLogger(__name__)


def _merl_baseline(config: TrainConfig) -> TrainConfig:
    return config.model_copy(
        update={
            "encoder": config.encoder.model_copy(update={"tokenizer": "joint"}),
            "masking": config.masking.model_copy(update={"lead_masking": False, "segment_ratio": 0.0}),
            "objective": config.objective.model_copy(update={"knowledge_weight": 0.0}),
        }
    )


def _no_knowledge(config: TrainConfig) -> TrainConfig:
    return config.model_copy(update={"objective": config.objective.model_copy(update={"knowledge_weight": 0.0})})


def _no_lead_masking(config: TrainConfig) -> TrainConfig:
    return config.model_copy(update={"masking": config.masking.model_copy(update={"lead_masking": False})})


MERL_BASELINE = "merl_baseline"
VARIANTS: dict[str, Callable[[TrainConfig], TrainConfig]] = {
    "kmerl": lambda config: config,
    MERL_BASELINE: _merl_baseline,
    "no_knowledge": _no_knowledge,
    "no_lead_masking": _no_lead_masking,
}


def variant_run_dir(runs_dir: Path, name: str, config: TrainConfig, feature_store_version: str) -> Path:
    """Where variant ``name`` trained with ``config`` on that feature store version runs:
    one directory per identity, shared by comparisons and evaluation references."""
    return runs_dir / f"{name}-{run_key(config, feature_store_version)[:12]}"


def train_reference(
    name: str,
    base: TrainConfig,
    feature_store_dir: StorePath | str,
    runs_dir: Path,
    feature_store_version: str,
    on_metrics: MetricsCallback | None = None,
) -> Path:
    """The model file of variant ``name`` (e.g. the MERL-style baseline) pretrained on the
    same feature store version with the same budget and seed as ``base``: trained once
    (resumable), then reused by every evaluation that asks for it."""
    config = VARIANTS[name](base)
    run_dir = variant_run_dir(runs_dir, name, config, feature_store_version)
    return train(
        config, feature_store_dir, run_dir, _tagged(on_metrics, name, config.seed), feature_store_version
    ).model_path


@dataclass(frozen=True, slots=True)
class Comparison:
    results: pl.DataFrame  # every variant's evaluation rows, per seed (column ``seed``)
    differences: pl.DataFrame  # the first variant minus each other one, paired, per seed (column ``seed``)
    timings: dict[str, dict[str, float]]  # "variant" (first seed) or "variant (seed s)" -> seconds, samples/s
    out_dir: Path


def compare(
    feature_store_dir: StorePath | str,
    out_dir: Path,
    tasks: list[EvalTask],
    text_encoder: TextEncoder,
    base: TrainConfig,
    evaluation: EvaluationConfig,
    variants: Sequence[str] = tuple(VARIANTS),
    seeds: Sequence[int] = (0,),
    on_metrics: MetricsCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> Comparison:
    """Train (or resume) and evaluate each variant once per seed; write ``comparison.md``,
    ``comparison.parquet``, ``differences.parquet``, ``timings.json`` and the plots under
    ``out_dir``.

    Timings per run: ``epoch_seconds`` and ``train_samples_per_s`` come from the run's
    own history (the training steps, whenever they ran); ``train_call_s`` and
    ``evaluate_call_s`` are this call's wall time, near zero for a finished run.
    """
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    store = FeatureStore.open(feature_store_dir)
    evaluation_key = stable_hash(
        evaluation, [task.model_dump(mode="json") for task in tasks], text_encoder.name, length=8
    )
    first, first_seed = variants[0], seeds[0]
    frames, timings, metrics, eval_dirs = [], {}, {}, {}
    scores: dict[tuple[str, int], pl.DataFrame] = {}
    differences = []
    for seed in seeds:
        for name in variants:
            config = VARIANTS[name](base.model_copy(update={"seed": seed}))
            run_dir = variant_run_dir(out_dir / "runs", name, config, store.version)
            started = time.perf_counter()
            result = train(config, feature_store_dir, run_dir, on_metrics=_tagged(on_metrics, name, seed))
            trained = time.perf_counter()
            eval_dir = run_dir / f"evaluation-{evaluation_key}"
            if (eval_dir / "results.parquet").exists():
                evaluated = read_evaluation(eval_dir)
            else:
                # One untrained and one supervised reference, beside the first variant's
                # first seed: what the table compares against.
                leading = name == first and seed == first_seed
                settings = evaluation.model_copy(
                    update={"untrained_reference": leading, "supervised_reference": leading}
                )
                evaluated = evaluate_encoder(
                    result.model_path, store, tasks, text_encoder, settings, name, eval_dir, on_progress=on_progress
                )
            frames.append(evaluated.results.with_columns(seed=pl.lit(seed)))
            scores[name, seed] = evaluated.scores.filter(pl.col("model") == name)
            if name == first and seed == first_seed:
                differences.append(evaluated.differences.with_columns(seed=pl.lit(seed)))
            epoch_seconds = sum(entry["epoch_seconds"] for entry in result.history)
            samples = sum(entry["samples_per_s"] * entry["epoch_seconds"] for entry in result.history)
            timings[name if seed == first_seed else f"{name} (seed {seed})"] = {
                "train_call_s": trained - started,
                "evaluate_call_s": time.perf_counter() - trained,
                "epoch_seconds": epoch_seconds,
                "train_samples_per_s": samples / epoch_seconds if epoch_seconds else 0.0,
            }
            if seed == first_seed:
                metrics[name], eval_dirs[name] = read_metrics(run_dir), eval_dir
        # The first variant against each other one as well, on the same records and seed:
        # what the method adds over each reference, beyond noise or not.
        between = [
            row
            for name in variants[1:]
            for row in differences_between(scores[first, seed], scores[name, seed], evaluation)
        ]
        differences.append(pl.DataFrame(between, schema=DIFFERENCE_SCHEMA).with_columns(seed=pl.lit(seed)))
    comparison = Comparison(pl.concat(frames), pl.concat(differences), timings, out_dir)
    _write(comparison, metrics, evaluation, eval_dirs[first], first)
    log.info("comparison on feature store %s over seeds %s written to %s", store.version, list(seeds), out_dir)
    return comparison


def _tagged(on_metrics: MetricsCallback | None, variant: str, seed: int) -> MetricsCallback | None:
    if on_metrics is None:
        return None
    return lambda metrics: on_metrics({"variant": variant, "seed": seed} | metrics)


def _write(
    comparison: Comparison,
    metrics: dict[str, list[dict[str, object]]],
    evaluation: EvaluationConfig,
    first_eval_dir: Path,
    first: str,
) -> None:
    out_dir, results, differences = comparison.out_dir, comparison.results, comparison.differences
    first_seed = results["seed"][0]
    for name, frame in (("comparison", results), ("differences", differences)):
        with atomic_write(out_dir / f"{name}.parquet") as handle:
            frame.write_parquet(handle)
    one_seed = results.filter(pl.col("seed") == first_seed).drop("seed")
    write_text_atomic(out_dir / "comparison.md", seeds_report(results, differences, first, evaluation.confidence))
    write_text_atomic(out_dir / "timings.json", json.dumps(comparison.timings, indent=2))
    methods = (ZERO_SHOT_TEXT, probe_method(max(evaluation.probe_fractions)))
    plots = {"loss_curves.png": loss_curves(metrics)}
    for task in one_seed["task"].unique(maintain_order=True):
        for method in methods:
            plots[f"partial_leads-{task}-{_file_safe(method)}.png"] = partial_lead_chart(one_seed, task, method)
    scores = read_evaluation(first_eval_dir).scores.filter(
        (pl.col("lead_subset") == "all12") & pl.col("method").is_in(methods)
    )
    for (task, method), rows in scores.group_by("task", "method", maintain_order=True):
        plots[f"roc-{first}-{task}-{_file_safe(method)}.png"] = roc_curves(
            rows, f"{first}: {task}, {method}, all 12 leads"
        )
    for name, png in plots.items():
        with atomic_write(out_dir / name) as handle:
            handle.write(png)


def _file_safe(method: str) -> str:
    return method.replace("%", "pct")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kmerl.model.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, help="default: the configuration's model.comparison.seeds")
    parser.add_argument(
        "--record-entities", type=Path, help="Parquet: record_id, entity_id, status (default: source labels)"
    )
    parser.add_argument("--vocabulary", type=Path, help="Parquet: entity_id, name (with --record-entities)")
    parser.add_argument("--out", type=Path, help="default: <home>/experiments (its feature store included)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from kmerl.config import KmerlConfig
    from kmerl.features import build_feature_store, entities_from_labels, label_vocabulary
    from kmerl.model.evaluation import tasks_for_sources
    from kmerl.signals import SignalStore
    from kmerl.sources import ChallengeSource, PtbXlSource
    from kmerl.text_encoder import MiniLmEncoder

    config = KmerlConfig()
    started = time.perf_counter()
    store = SignalStore.open(config.layout.signal_store, access="parquet")
    if args.record_entities is not None:
        if args.vocabulary is None:
            parser.error("--record-entities needs --vocabulary")
        record_entities, vocabulary = pl.read_parquet(args.record_entities), pl.read_parquet(args.vocabulary)
    else:
        log.info(
            "knowledge: the records' source labels (cardiologist SCP codes, SNOMED CT diagnoses), not LLM extraction"
        )
        ptbxl = next((s for s in config.sources if isinstance(s, PtbXlSource)), None)
        challenge = next((s for s in config.sources if isinstance(s, ChallengeSource)), None)
        vocabulary = label_vocabulary(
            ptbxl.scp_statements_file if ptbxl else None,
            challenge.mapping_dir if challenge else None,
        )
        record_entities = entities_from_labels(store.metadata(["record_id", "labels"]).collect(), vocabulary)
    text_encoder = MiniLmEncoder()
    out_dir = args.out or config.layout.experiments
    features_dir = out_dir / "feature_store"  # label-derived knowledge: not the pipeline's feature store
    build_feature_store(store, record_entities, vocabulary, features_dir, text_encoder, config.model.features,
                        on_progress=lambda p: log.info("features: %s", p))  # fmt: skip
    features_s = time.perf_counter() - started
    comparison = compare(
        features_dir, out_dir, tasks_for_sources(config.sources), text_encoder,
        config.model.training, config.model.evaluation, args.variants, args.seeds or config.model.comparison.seeds,
        on_metrics=lambda m: log.info("%s", json.dumps(m)) if m["event"] == "epoch" else None,
    )  # fmt: skip
    print((comparison.out_dir / "comparison.md").read_text())
    print(
        json.dumps(
            {"feature_store_s": features_s, "total_s": time.perf_counter() - started} | comparison.timings, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
