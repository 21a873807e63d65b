"""Zero-shot, linear-probe and partial-lead evaluation of a trained encoder (method section 6).

For every task and lead subset: the test records are embedded with only the
subset's leads; zero-shot scores are the cosine similarity to each class prompt
(and, for models with a cardiac query network, the query logit of the class name);
linear probes are fitted on 1%, 10% and 100% of the task's training labels. Every
number is a macro AUROC with a bootstrap interval over the test records.

Beside the trained encoder, the same architecture with untrained weights is scored
the same way on the same records (``untrained_reference``), with the paired bootstrap
of the difference: a random encoder with a linear probe can match pretrained ones, so
a number without that reference does not say what pretraining added. With
``supervised_reference`` (always in comparisons), the architecture trained from scratch
on the full probe's labels is scored beside ``probe_100%`` the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from kmerl.atomic import atomic_write, write_text_atomic
from kmerl.features import FeatureSplit, FeatureStore
from kmerl.hashing import stable_hash
from kmerl.leads import LEAD_SUBSETS, lead_mask
from kmerl.model.checkpoint import load_model
from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation.metrics import macro_auroc, paired_difference
from kmerl.model.evaluation.probe import label_subset, out_of_fold_scores, probe_scores
from kmerl.model.evaluation.supervised import fit_supervised
from kmerl.model.evaluation.table import results_markdown
from kmerl.model.evaluation.tasks import EvalTask
from kmerl.model.network import KmerlModel
from kmerl.progress import ProgressCallback, ProgressTracker
from kmerl.text_encoder import TextEncoder

log = logging.getLogger(__name__)

ZERO_SHOT_TEXT = "zero_shot_text"
ZERO_SHOT_QUERY = "zero_shot_query"
UNTRAINED = "untrained"
SUPERVISED = "supervised"


def probe_method(fraction: float) -> str:
    return f"probe_{fraction:.0%}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    results: pl.DataFrame  # one row per (model, task, lead_subset, method): macro AUROC and its interval
    scores: pl.DataFrame  # one row per (…, class, record): label and score, for ROC curves and audits
    differences: pl.DataFrame  # one row per (task, lead_subset, method): model minus untrained, paired interval


@dataclass(frozen=True, slots=True)
class RecordSet:
    """Rows of one task side (fit or test), possibly spread over several splits."""

    parts: list[tuple[FeatureSplit, np.ndarray]]
    record_ids: list[str]
    labels: np.ndarray  # (records, classes) bool
    lead_masks: np.ndarray  # (records, 12) bool

    def select(self, keep: np.ndarray) -> RecordSet:
        offsets = np.cumsum([0] + [len(p) for _, p in self.parts])
        parts = [
            (split, positions[keep[offsets[i] : offsets[i + 1]]]) for i, (split, positions) in enumerate(self.parts)
        ]
        ids = [rid for rid, kept in zip(self.record_ids, keep, strict=True) if kept]
        return RecordSet(parts, ids, self.labels[keep], self.lead_masks[keep])


def evaluate_encoder(
    model_path: Path,
    feature_store: FeatureStore,
    tasks: list[EvalTask],
    text_encoder: TextEncoder,
    config: EvaluationConfig | None = None,
    model_name: str = "kmerl",
    out_dir: Path | None = None,
    device: str = "cpu",
    on_progress: ProgressCallback | None = None,
    folds: int = 0,
    references: Mapping[str, Path] | None = None,
) -> Evaluation:
    """Evaluate the model saved at ``model_path`` (and its untrained twin, unless
    ``config.untrained_reference`` is off); with ``out_dir``, also write ``results.parquet``,
    ``results.md``, ``scores.parquet`` and ``differences.parquet`` there.

    ``references`` names other trained encoders (e.g. the MERL-style baseline) scored the
    same way on the same records, each with the model's paired difference to it.

    ``folds`` >= 2 cross-fits, for records the encoder never saw: every split of the store
    is pooled, every record is scored (zero-shot directly, probes by one fitted on the
    other folds), so no labelled record is left out of the figures."""
    config = config or EvaluationConfig()
    trained = load_model(model_path, device)
    models = [(model_name, trained)]
    if config.untrained_reference:
        models.append((UNTRAINED, untrained_twin(trained, config.seed)))
    models += [(name, load_model(path, device)) for name, path in (references or {}).items()]
    tracker = ProgressTracker(len(tasks) * len(config.lead_subsets), on_progress, 5.0, unit="settings")
    results: list[dict[str, object]] = []
    scores: list[pl.DataFrame] = []
    differences: list[dict[str, object]] = []
    for task in tasks:
        if folds:  # every split of the store: the encoder never saw any of it
            fit = test = _records(feature_store, task, tuple(feature_store.manifest.rows))
        else:
            fit, test = _records(feature_store, task, task.fit_splits), _records(feature_store, task, task.test_splits)
        classes = _eligible_classes(test.labels, config.min_test_positives)
        if not len(classes):
            log.warning("%s: no class has %d positives in the test set; skipped", task.name, config.min_test_positives)
            tracker.advance(len(config.lead_subsets))
            continue
        names = [task.classes[c].name for c in classes]
        fit, test = _with_classes(fit, classes), _with_classes(test, classes)
        prompts = torch.from_numpy(text_encoder.encode([config.prompt_template.format(name=n) for n in names])).to(
            device
        )
        supervised = (
            _supervised_reference(trained, fit, config)
            if config.supervised_reference and not folds and len(fit.record_ids)
            else None
        )
        for subset in config.lead_subsets:
            scored_by_model = {
                name: _score_subset(model, fit, test, prompts, subset, config, device, folds) for name, model in models
            }
            if supervised is not None:
                scored_by_model[SUPERVISED] = _score_supervised(
                    *supervised, len(fit.record_ids), test, subset, config, device
                )
            for name, methods in scored_by_model.items():
                for method, (fit_n, scored, test_set) in methods.items():
                    metric = macro_auroc(test_set.labels, scored, config.bootstrap, config.confidence, config.seed)
                    results.append({
                        "model": name, "task": task.name, "lead_subset": subset, "method": method,
                        "macro_auroc": metric.value, "ci_low": metric.low, "ci_high": metric.high,
                        "n_fit": fit_n, "n_test": len(test_set.record_ids), "n_classes": len(names),
                        "classes": names, "class_auroc": list(metric.per_class),
                    })  # fmt: skip
                    scores.append(_score_rows(name, task.name, subset, method, names, test_set, scored))
            for reference in scored_by_model:
                if reference != model_name:
                    differences += _differences_to(reference, task.name, subset, model_name, scored_by_model, config)
            tracker.advance(1)
    tracker.finish()
    evaluation = Evaluation(
        pl.DataFrame(results, schema=RESULT_SCHEMA),
        pl.concat(scores) if scores else pl.DataFrame(),
        pl.DataFrame(differences, schema=DIFFERENCE_SCHEMA),
    )
    if out_dir is not None:
        write_evaluation(evaluation, out_dir)
    return evaluation


def _differences_to(
    reference_name: str,
    task: str,
    subset: str,
    model_name: str,
    scored_by_model: dict[str, dict[str, tuple[int, np.ndarray, RecordSet]]],
    config: EvaluationConfig,
) -> list[dict[str, object]]:
    """For each method both were scored with: the model's macro AUROC minus the reference's
    (its untrained twin, the supervised model, another encoder) on the same records, with
    the paired bootstrap interval."""
    reference = scored_by_model[reference_name]
    rows: list[dict[str, object]] = []
    for method, (_, scored, test_set) in scored_by_model[model_name].items():
        if method not in reference:
            continue
        diff = paired_difference(
            test_set.labels, scored, reference[method][1], config.bootstrap, config.confidence, config.seed
        )
        rows.append({
            "task": task, "lead_subset": subset, "method": method, "model": model_name, "reference": reference_name,
            "difference": diff.value, "ci_low": diff.low, "ci_high": diff.high,
            "excludes_zero": diff.excludes_zero, "n_test": len(test_set.record_ids),
        })  # fmt: skip
    return rows


def _supervised_reference(
    trained: KmerlModel, fit: RecordSet, config: EvaluationConfig
) -> tuple[KmerlModel, nn.Linear]:
    """The trained model's architecture from fresh weights, trained on every fit record's labels."""
    signals, masks = [], []
    for split, positions in fit.parts:
        signals.append(split.rows(positions, columns=("signal",))["signal"].astype(np.float32, copy=False))
        masks.append(split.column("lead_mask")[positions])
    model = untrained_twin(trained, config.seed + 1)
    head = fit_supervised(
        model, np.concatenate(signals), np.concatenate(masks), fit.labels,
        config.supervised_epochs, config.supervised_learning_rate, config.batch_size, config.seed,
    )  # fmt: skip
    return model, head


@torch.no_grad()
def _score_supervised(
    model: KmerlModel,
    head: nn.Linear,
    fitted: int,
    test: RecordSet,
    subset: str,
    config: EvaluationConfig,
    device: str,
) -> dict[str, tuple[int, np.ndarray, RecordSet]]:
    """The supervised model's probabilities on the test records holding one of the subset's
    leads (the records every model is scored on), beside the full probe."""
    wanted = np.array(lead_mask(LEAD_SUBSETS[subset]))
    test = test.select((test.lead_masks & wanted).any(axis=1))
    features = embed_records(model, test, wanted, None, config.batch_size, device).features
    scores = torch.sigmoid(head(torch.from_numpy(features).to(device))).cpu().numpy().astype(np.float64)
    return {probe_method(1.0): (fitted, scores, test)}


def differences_between(
    scores: pl.DataFrame, reference_scores: pl.DataFrame, config: EvaluationConfig
) -> list[dict[str, object]]:
    """From two models' stored scores on the same records (``Evaluation.scores``): per
    (task, lead subset, method) both were scored with, the first's macro AUROC minus the
    reference's, with the paired bootstrap interval."""
    keys = ["task", "lead_subset", "method", "class", "record_id"]
    joined = scores.join(reference_scores.select(*keys, reference_score="score"), on=keys).sort(keys)
    rows: list[dict[str, object]] = []
    for (task, subset, method), part in joined.group_by("task", "lead_subset", "method", maintain_order=True):
        classes = part["class"].n_unique()
        shape = (classes, len(part) // classes)  # sorted by class, then record: one row per class
        labels, first, second = (part[c].to_numpy().reshape(shape).T for c in ("label", "score", "reference_score"))
        diff = paired_difference(labels, first, second, config.bootstrap, config.confidence, config.seed)
        rows.append({
            "task": task, "lead_subset": subset, "method": method,
            "model": scores["model"][0], "reference": reference_scores["model"][0],
            "difference": diff.value, "ci_low": diff.low, "ci_high": diff.high,
            "excludes_zero": diff.excludes_zero, "n_test": shape[1],
        })  # fmt: skip
    return rows


def untrained_twin(model: KmerlModel, seed: int) -> KmerlModel:
    """The same architecture, input shape and vocabulary with freshly initialised weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        twin = KmerlModel(model.config, model.shape, model.text_projection.in_features, model.entity_embeddings)
    return twin.to(model.entity_embeddings.device).eval()


def write_evaluation(evaluation: Evaluation, out_dir: Path) -> None:
    """Results last: their presence marks a finished evaluation."""
    for name, frame in (
        ("scores", evaluation.scores),
        ("differences", evaluation.differences),
        ("results", evaluation.results),
    ):
        with atomic_write(out_dir / f"{name}.parquet") as handle:
            frame.write_parquet(handle)
    write_text_atomic(out_dir / "results.md", results_markdown(evaluation.results, evaluation.differences))


def read_evaluation(out_dir: Path) -> Evaluation:
    return Evaluation(
        pl.read_parquet(out_dir / "results.parquet"),
        pl.read_parquet(out_dir / "scores.parquet"),
        pl.read_parquet(out_dir / "differences.parquet"),
    )


RESULT_SCHEMA = {
    "model": pl.String(), "task": pl.String(), "lead_subset": pl.String(), "method": pl.String(),
    "macro_auroc": pl.Float64(), "ci_low": pl.Float64(), "ci_high": pl.Float64(),
    "n_fit": pl.Int64(), "n_test": pl.Int64(), "n_classes": pl.Int64(),
    "classes": pl.List(pl.String()), "class_auroc": pl.List(pl.Float64()),
}  # fmt: skip
DIFFERENCE_SCHEMA = {
    "task": pl.String(), "lead_subset": pl.String(), "method": pl.String(), "model": pl.String(),
    "reference": pl.String(), "difference": pl.Float64(), "ci_low": pl.Float64(), "ci_high": pl.Float64(),
    "excludes_zero": pl.Boolean(), "n_test": pl.Int64(),
}  # fmt: skip


def _records(store: FeatureStore, task: EvalTask, splits: tuple[str, ...]) -> RecordSet:
    parts, ids, labels, masks = [], [], [], []
    for name in splits:
        if not store.manifest.rows.get(name):
            continue
        split = store.split(name)
        metadata = split.metadata(["record_id", "source", "labels"]).with_row_index("position")
        metadata = metadata.filter(pl.col("source") == task.source)
        positions = metadata["position"].to_numpy().astype(np.int64)
        parts.append((split, positions))
        ids.extend(metadata["record_id"].to_list())
        labels.append(task.label_matrix(metadata["labels"]))
        masks.append(split.column("lead_mask")[positions])
    if not parts:
        return RecordSet([], [], np.zeros((0, len(task.classes)), bool), np.zeros((0, 12), bool))
    return RecordSet(parts, ids, np.concatenate(labels), np.concatenate(masks))


def _eligible_classes(labels: np.ndarray, min_positives: int) -> np.ndarray:
    positives = labels.sum(axis=0)
    return np.flatnonzero((positives >= min_positives) & (positives < len(labels)))


def _with_classes(records: RecordSet, classes: np.ndarray) -> RecordSet:
    return RecordSet(records.parts, records.record_ids, records.labels[:, classes], records.lead_masks)


def _score_subset(
    model: KmerlModel,
    fit: RecordSet,
    test: RecordSet,
    prompts: torch.Tensor,
    subset: str,
    config: EvaluationConfig,
    device: str,
    folds: int = 0,
) -> dict[str, tuple[int, np.ndarray, RecordSet]]:
    """method -> (fit records used, (test records, classes) scores, test records) for one lead subset.

    Records holding none of the subset's leads cannot be scored with it and are
    left out of both sides (the same records for every model). With ``folds``, ``fit``
    and ``test`` are the same pooled records and probes are scored out of fold.
    """
    wanted = np.array(lead_mask(LEAD_SUBSETS[subset]))
    fit = fit.select((fit.lead_masks & wanted).any(axis=1))
    test = test.select((test.lead_masks & wanted).any(axis=1))
    test_out = embed_records(model, test, wanted, prompts, config.batch_size, device)
    methods: dict[str, tuple[int, np.ndarray, RecordSet]] = {}
    with torch.no_grad():
        text = model.encode_text(prompts).cpu().numpy()
    methods[ZERO_SHOT_TEXT] = (0, test_out.embeddings @ text.T, test)
    if test_out.query_logits is not None:
        methods[ZERO_SHOT_QUERY] = (0, test_out.query_logits, test)
    if folds:
        fold_of = record_folds(test.record_ids, folds)
        for fraction in config.probe_fractions:
            fitted, scored = out_of_fold_scores(
                test_out.features, test.labels, fold_of, fraction, config.probe_c, config.seed
            )
            methods[probe_method(fraction)] = (fitted, scored, test)
    elif len(fit.record_ids):
        fit_features = embed_records(model, fit, wanted, None, config.batch_size, device).features
        for fraction in config.probe_fractions:
            chosen = label_subset(len(fit.record_ids), fraction, config.seed)
            scored = probe_scores(fit_features[chosen], fit.labels[chosen], test_out.features, config.probe_c)
            methods[probe_method(fraction)] = (len(chosen), scored, test)
    return methods


def record_folds(record_ids: list[str], folds: int) -> np.ndarray:
    """A fold per record from a hash of its id: the same record, the same fold, in any run."""
    return np.array([int(stable_hash("fold", record_id, length=8), 16) % folds for record_id in record_ids])


@dataclass(frozen=True, slots=True)
class EmbeddedRecords:
    features: np.ndarray
    embeddings: np.ndarray  # L2-normalised
    query_logits: np.ndarray | None


@torch.no_grad()
def embed_records(
    model: KmerlModel,
    records: RecordSet,
    wanted: np.ndarray,
    prompts: torch.Tensor | None,
    batch_size: int,
    device: str,
) -> EmbeddedRecords:
    features, embeddings, logits = [], [], []
    ask = prompts is not None and model.query_network is not None
    for split, positions in records.parts:
        masks = split.column("lead_mask")[positions] & wanted
        # Records with equal lead counts batch without padding (the fused attention kernel).
        order = np.argsort(masks.sum(axis=1), kind="stable")
        part_features = np.empty((len(positions), model.config.encoder.width), dtype=np.float32)
        part_embeddings = np.empty((len(positions), model.config.encoder.embed_dim), dtype=np.float32)
        part_logits = np.empty((len(positions), len(prompts) if ask else 0), dtype=np.float32)  # type: ignore[arg-type]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            rows = split.rows(positions[batch], columns=("signal",))
            signal = torch.from_numpy(rows["signal"].astype(np.float32, copy=False)).to(device)
            output = model.encode_ecg(signal, torch.from_numpy(masks[batch]).to(device))
            part_features[batch] = output.features.float().cpu().numpy()
            part_embeddings[batch] = torch.nn.functional.normalize(output.embedding.float(), dim=-1).cpu().numpy()
            if ask:
                part_logits[batch] = model.query_logits(output, prompts).float().cpu().numpy()  # type: ignore[arg-type]
        features.append(part_features)
        embeddings.append(part_embeddings)
        logits.append(part_logits)
    width, dim = model.config.encoder.width, model.config.encoder.embed_dim
    return EmbeddedRecords(
        np.concatenate(features) if features else np.zeros((0, width), np.float32),
        np.concatenate(embeddings) if embeddings else np.zeros((0, dim), np.float32),
        np.concatenate(logits) if ask and logits else None,
    )


def _score_rows(
    model: str, task: str, subset: str, method: str, names: list[str], records: RecordSet, scores: np.ndarray
) -> pl.DataFrame:
    n, classes = scores.shape
    return pl.DataFrame({
        "model": [model] * (n * classes), "task": [task] * (n * classes), "lead_subset": [subset] * (n * classes),
        "method": [method] * (n * classes), "class": np.repeat(np.array(names, dtype=object), n).tolist(),
        "record_id": records.record_ids * classes, "label": records.labels.T.reshape(-1),
        "score": scores.T.reshape(-1).astype(np.float64),
    })  # fmt: skip
