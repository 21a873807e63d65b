from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from kmerl.features import FeatureStore
from kmerl.leads import LEAD_SUBSETS
from kmerl.model.checkpoint import load_model
from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation import challenge_task, evaluate_encoder, macro_auroc, ptbxl_superclass_task, read_evaluation
from kmerl.model.evaluation.evaluate import differences_between, record_folds, untrained_twin
from kmerl.model.evaluation.metrics import auroc, auroc_rows, paired_difference
from kmerl.model.evaluation.probe import label_subset, out_of_fold_scores, probe_scores
from kmerl.model.evaluation.supervised import fit_supervised
from kmerl.model.plots import loss_curves, partial_lead_chart, roc_curves
from kmerl.model.runs import read_metrics
from kmerl.model.train import train
from tests.model_fixtures import TEXT_ENCODER, tiny_config

PNG = b"\x89PNG\r\n\x1a\n"


def test_auroc_equals_scikit_learn_with_ties_and_rows() -> None:
    rng = np.random.default_rng(0)
    for n in (5, 17, 200):
        labels = rng.random(n) < 0.3
        labels[:2] = [True, False]
        scores = np.round(rng.normal(size=n) + labels, 1)  # rounding makes ties
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    labels = rng.random((50, 30)) < 0.4
    scores = rng.normal(size=(50, 30)) + labels
    expected = [roc_auc_score(labels[i], scores[i]) for i in range(50)]
    np.testing.assert_allclose(auroc_rows(labels, scores), expected, atol=1e-12)
    assert np.isnan(auroc(np.ones(4, bool), np.arange(4.0)))


def test_macro_auroc_and_its_bootstrap_interval() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random((120, 4)) < 0.3
    scores = rng.normal(size=(120, 4)) + 1.5 * labels
    result = macro_auroc(labels, scores, resamples=500, seed=3)
    per_class = [roc_auc_score(labels[:, c], scores[:, c]) for c in range(4)]
    assert result.value == pytest.approx(np.mean(per_class))
    np.testing.assert_allclose(result.per_class, per_class)
    assert result.low < result.value < result.high
    assert macro_auroc(labels, scores, resamples=500, seed=3) == result  # seeded: reproducible
    smaller = macro_auroc(labels[:30], scores[:30], resamples=500, seed=3)
    assert smaller.high - smaller.low > result.high - result.low  # fewer records, wider interval
    # a class with no positive is left out of the mean, not scored 0 or 1
    labels[:, 2] = False
    partial = macro_auroc(labels, scores, resamples=100)
    assert np.isnan(partial.per_class[2]) and partial.value == pytest.approx(np.nanmean(partial.per_class))


def test_the_paired_difference_resamples_the_same_records_for_both_models() -> None:
    rng = np.random.default_rng(2)
    labels = rng.random((150, 3)) < 0.3
    informative = rng.normal(size=(150, 3)) + 1.5 * labels
    noise = rng.normal(size=(150, 3))
    better = paired_difference(labels, informative, noise, resamples=500, seed=4)
    assert better.value == pytest.approx(
        macro_auroc(labels, informative, 0).value - macro_auroc(labels, noise, 0).value
    )
    assert 0 < better.low < better.value < better.high and better.excludes_zero
    same = paired_difference(labels, noise, noise, resamples=200)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero  # paired: no noise at all
    other_noise = paired_difference(labels, rng.normal(size=(150, 3)), noise, resamples=500, seed=4)
    assert other_noise.low < 0 < other_noise.high and not other_noise.excludes_zero  # chance against chance


def test_probe_equals_a_scikit_learn_logistic_regression() -> None:
    features, target = make_classification(n_samples=300, n_features=12, n_informative=5, random_state=0)
    labels = np.stack([target == 1, features[:, 0] > 0.5, np.zeros(300, bool)], axis=1)
    train, test = slice(0, 200), slice(200, 300)
    scores = probe_scores(features[train], labels[train], features[test], c=0.5)
    scaler = StandardScaler().fit(features[train])
    reference = LogisticRegression(C=0.5, max_iter=2000).fit(scaler.transform(features[train]), labels[train, 0])
    np.testing.assert_allclose(scores[:, 0], reference.predict_proba(scaler.transform(features[test]))[:, 1], rtol=1e-6)
    assert roc_auc_score(labels[test, 1], scores[:, 1]) > 0.9
    assert np.all(scores[:, 2] == 0.0)  # never positive in training: a constant, AUROC 0.5


def test_label_subsets_are_reproducible_and_never_empty() -> None:
    assert len(label_subset(353, 0.01, seed=0)) == 4
    assert len(label_subset(50, 0.01, seed=0)) == 1
    assert len(label_subset(353, 1.0, seed=0)) == 353
    np.testing.assert_array_equal(label_subset(353, 0.1, seed=5), label_subset(353, 0.1, seed=5))


def test_out_of_fold_probes_score_every_record_without_its_own_label() -> None:
    features, target = make_classification(n_samples=120, n_features=8, random_state=1)
    labels = target[:, None].astype(bool)
    ids = [f"a/{i}" for i in range(120)]
    folds = record_folds(ids, 5)
    assert np.array_equal(folds, record_folds(list(reversed(ids)), 5)[::-1])  # a record's fold is its own
    assert set(folds) == set(range(5))
    fitted, scores = out_of_fold_scores(features, labels, folds)
    assert fitted == max(int((folds != f).sum()) for f in range(5)) and roc_auc_score(target, scores[:, 0]) > 0.8
    flipped = labels.copy()
    flipped[folds == 0] = ~flipped[folds == 0]  # fold 0's own labels never reach the probe that scores it
    assert np.array_equal(out_of_fold_scores(features, flipped, folds)[1][folds == 0], scores[folds == 0])
    assert not np.array_equal(out_of_fold_scores(features, flipped, folds)[1][folds == 1], scores[folds == 1])


def test_tasks_read_classes_from_the_source_tables(shared_data: Path, feature_store: FeatureStore) -> None:
    ptbxl = ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")
    assert [c.name for c in ptbxl.classes] == [
        "normal ECG",
        "myocardial infarction",
        "ST/T change",
        "conduction disturbance",
        "hypertrophy",
    ]
    assert "IMI" in ptbxl.classes[1].codes and "NORM" in ptbxl.classes[0].codes
    labels = pl.Series(
        "labels",
        [[{"system": "scp", "code": "IMI", "score": 100.0}], [], [{"system": "snomed", "code": "IMI", "score": None}]],
    )
    np.testing.assert_array_equal(ptbxl.label_matrix(labels)[:, 1], [True, False, False])
    challenge = challenge_task(shared_data / "cinc2021")
    assert challenge.test_splits == ("val", "test")
    assert any(c.name == "atrial fibrillation" and c.codes == ("164889003",) for c in challenge.classes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, feature_store_root: Path) -> Path:
    out = tmp_path_factory.mktemp("evaluated-run")
    train(tiny_config(epochs=1), feature_store_root, out)
    return out


def test_the_supervised_reference_is_the_same_model_every_run(trained: Path) -> None:
    model = load_model(trained / "model.pt", "cpu")
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((12, 12, model.shape.samples)).astype(np.float32)
    masks, labels = np.ones((12, 12), bool), rng.random((12, 3)) < 0.5

    def head_weights(seed: int) -> torch.Tensor:
        twin = untrained_twin(model, 1)
        torch.manual_seed(seed + 100)  # whatever the global generator holds: the fit is seeded on its own
        return fit_supervised(twin, signals, masks, labels, 2, 1e-3, 4, seed).weight.detach()

    assert torch.equal(head_weights(0), head_weights(0)) and not torch.equal(head_weights(0), head_weights(1))


@pytest.mark.slow
def test_evaluation_covers_every_task_subset_and_method(
    trained: Path, feature_store: FeatureStore, shared_data: Path, tmp_path: Path
) -> None:
    tasks = [
        ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv"),
        challenge_task(shared_data / "cinc2021"),
    ]
    config = EvaluationConfig(bootstrap=200, supervised_reference=True)
    evaluation = evaluate_encoder(trained / "model.pt", feature_store, tasks, TEXT_ENCODER, config, out_dir=tmp_path)
    results = evaluation.results.filter(pl.col("model") == "kmerl")
    untrained = evaluation.results.filter(pl.col("model") == "untrained")  # the same architecture, random weights
    methods = {"zero_shot_text", "zero_shot_query", "probe_1%", "probe_10%", "probe_100%"}
    for task in ("ptbxl_superclass", "cinc2021_snomed"):
        rows = results.filter(pl.col("task") == task)
        assert set(rows["lead_subset"]) == set(LEAD_SUBSETS) and set(rows["method"]) == methods
        assert rows.height == len(LEAD_SUBSETS) * len(methods) == untrained.filter(pl.col("task") == task).height
    keys = ["task", "lead_subset", "method"]
    to_untrained = evaluation.differences.filter(pl.col("reference") == "untrained")
    paired = to_untrained.join(results, on=keys).join(untrained, on=keys, suffix="_untrained")
    assert paired.height == to_untrained.height == results.height
    assert ((paired["macro_auroc"] - paired["macro_auroc_untrained"] - paired["difference"]).abs() < 1e-12).all()
    assert (paired["ci_low"] <= paired["difference"]).all() and (paired["difference"] <= paired["ci_high"]).all()
    assert (paired["excludes_zero"] == ((paired["ci_low"] > 0) | (paired["ci_high"] < 0))).all()
    # The upper reference: the architecture trained from scratch on the full probe's labels.
    supervised = evaluation.results.filter(pl.col("model") == "supervised")
    assert set(supervised["method"]) == {"probe_100%"} and supervised.height == 2 * len(LEAD_SUBSETS)
    full_probe = results.filter(pl.col("method") == "probe_100%")
    against = evaluation.differences.filter(pl.col("reference") == "supervised").join(full_probe, on=keys)
    against = against.join(supervised, on=keys, suffix="_supervised")
    assert against.height == supervised.height  # every fit record trains it; a subset's probe fits those with its leads
    assert (against["n_fit_supervised"] >= against["n_fit"]).all()
    assert ((against["macro_auroc"] - against["macro_auroc_supervised"] - against["difference"]).abs() < 1e-12).all()
    table = (tmp_path / "results.md").read_text()
    assert "| kmerl | untrained | supervised | kmerl - untrained (paired) | excludes 0 |" in table
    assert "| kmerl - supervised (paired) | excludes 0 | n test |" in table
    assert "- ptbxl_superclass: zero_shot_text above untrained: " in table
    assert (results["ci_low"] <= results["macro_auroc"]).all() and (results["macro_auroc"] <= results["ci_high"]).all()
    ptbxl = results.filter((pl.col("task") == "ptbxl_superclass") & (pl.col("lead_subset") == "all12"))
    assert set(ptbxl["n_test"]) == {66} and set(ptbxl["n_classes"]) == {5}  # fold 10 of the 500 sample records
    assert dict(zip(ptbxl["method"], ptbxl["n_fit"], strict=True))["probe_1%"] == 4
    assert "small" in (tmp_path / "results.md").read_text()
    assert read_evaluation(tmp_path).results.equals(evaluation.results)
    assert read_evaluation(tmp_path).differences.equals(evaluation.differences)
    recomputed = differences_between(  # from the stored scores alone, as a comparison of variants does
        *(evaluation.scores.filter(pl.col("model") == model) for model in ("kmerl", "untrained")), config
    )
    assert len(recomputed) == to_untrained.height
    for row, stored in zip(sorted(recomputed, key=lambda r: [str(r[k]) for k in keys]),
                           to_untrained.sort(keys).iter_rows(named=True), strict=True):  # fmt: skip
        assert row["difference"] == pytest.approx(stored["difference"]) and row["n_test"] == stored["n_test"]

    # the per-record scores reproduce the reported AUROCs
    scores = evaluation.scores.filter(
        (pl.col("model") == "kmerl")
        & (pl.col("task") == "ptbxl_superclass")
        & (pl.col("lead_subset") == "I")
        & (pl.col("method") == "zero_shot_text")
    )
    row = results.filter(
        (pl.col("task") == "ptbxl_superclass") & (pl.col("lead_subset") == "I") & (pl.col("method") == "zero_shot_text")
    )
    per_class = [
        roc_auc_score(part["label"], part["score"]) for part in scores.partition_by("class", maintain_order=True)
    ]
    assert row["macro_auroc"][0] == pytest.approx(np.mean(per_class))

    assert roc_curves(scores, "zero-shot, lead I").startswith(PNG)
    assert partial_lead_chart(results, "ptbxl_superclass", "probe_100%").startswith(PNG)
    assert loss_curves({"tiny": read_metrics(trained)}).startswith(PNG)


def test_a_model_without_knowledge_has_no_query_scores(
    tmp_path: Path, feature_store_root: Path, feature_store: FeatureStore, shared_data: Path
) -> None:
    config = tiny_config(epochs=1, objective={"knowledge_weight": 0.0, "query_heads": 2})
    train(config, feature_store_root, tmp_path / "run")
    task = ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")
    evaluation = evaluate_encoder(
        tmp_path / "run" / "model.pt", feature_store, [task], TEXT_ENCODER,
        EvaluationConfig(bootstrap=0, lead_subsets=("II",), probe_fractions=(1.0,)), model_name="no_knowledge",
    )  # fmt: skip
    assert set(evaluation.results["method"]) == {"zero_shot_text", "probe_100%"}
    assert set(evaluation.results["model"]) == {"no_knowledge", "untrained"}


@pytest.mark.slow
def test_comparison_of_variants_on_the_same_budget(feature_store_root: Path, shared_data: Path, tmp_path: Path) -> None:
    from kmerl.model.experiments import VARIANTS, compare

    base = tiny_config(epochs=1)
    baseline = VARIANTS["merl_baseline"](base)
    assert baseline.encoder.tokenizer == "joint" and not baseline.masking.lead_masking
    assert baseline.masking.segment_ratio == 0 and not baseline.objective.uses_knowledge
    assert baseline.epochs == base.epochs and baseline.optim == base.optim and baseline.batch_size == base.batch_size
    assert (
        not VARIANTS["no_knowledge"](base).objective.uses_knowledge
        and VARIANTS["no_knowledge"](base).masking == base.masking
    )
    assert not VARIANTS["no_lead_masking"](base).masking.lead_masking

    tasks = [ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")]
    evaluation = EvaluationConfig(bootstrap=50, lead_subsets=("I", "all12"), probe_fractions=(0.1, 1.0))
    first = compare(feature_store_root, tmp_path, tasks, TEXT_ENCODER, base, evaluation, ["kmerl", "merl_baseline"])
    assert set(first.results["model"]) == {"kmerl", "untrained", "supervised", "merl_baseline"}  # one of each reference
    summary, table = (tmp_path / "comparison.md").read_text().split("## Seed 0, with intervals")
    assert "Over seeds 0" in summary and "(1 run)" in summary  # one seed: no spread to claim
    assert "| kmerl | untrained | supervised | merl_baseline | kmerl - untrained (paired) | excludes 0 |" in table
    assert "| kmerl - merl_baseline (paired) | excludes 0 | n test |" in table and "small" in table
    assert "zero_shot_text above merl_baseline: " in table  # a verdict against the baseline too
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ptbxl_superclass | all12 |")]
    differences = {row[2]: (row[7], row[11]) for row in rows}  # method -> (minus untrained, minus the baseline)
    assert all(untrained != "n/a" for untrained, _ in differences.values())
    assert differences["zero_shot_query"][1] == "n/a"  # the baseline has no query network
    assert all(baseline != "n/a" for method, (_, baseline) in differences.items() if method != "zero_shot_query")
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "loss_curves.png" in pngs and "partial_leads-ptbxl_superclass-zero_shot_text.png" in pngs
    assert any(name.startswith("roc-kmerl-") for name in pngs)
    again = compare(feature_store_root, tmp_path, tasks, TEXT_ENCODER, base, evaluation, ["kmerl", "merl_baseline"])
    assert again.results.equals(first.results)  # trained and evaluated once: the rerun only reads


def test_the_merl_style_reference_is_trained_once_and_scored_beside_on_the_same_records(
    feature_store_root: Path, feature_store: FeatureStore, trained: Path, shared_data: Path, tmp_path: Path
) -> None:
    from kmerl.model.experiments import MERL_BASELINE, train_reference

    base = tiny_config(epochs=1)
    path = train_reference(MERL_BASELINE, base, feature_store_root, tmp_path, feature_store.version)
    assert load_model(path, "cpu").config.encoder.tokenizer == "joint"
    written = path.stat().st_mtime_ns
    assert train_reference(MERL_BASELINE, base, feature_store_root, tmp_path, feature_store.version) == path
    assert path.stat().st_mtime_ns == written  # reused, not retrained

    task = ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")
    settings = EvaluationConfig(bootstrap=20, lead_subsets=("all12",), probe_fractions=(1.0,))
    evaluation = evaluate_encoder(
        trained / "model.pt", feature_store, [task], TEXT_ENCODER, settings, references={MERL_BASELINE: path}
    )
    rows = evaluation.results.filter(pl.col("method") == "probe_100%")
    assert set(rows["model"]) == {"kmerl", "untrained", MERL_BASELINE}
    assert rows["n_test"].n_unique() == 1  # the same test records for every model
    versus = evaluation.differences.filter(pl.col("reference") == MERL_BASELINE)
    assert set(versus["method"]) == {"zero_shot_text", "probe_100%"}  # no query network in the baseline


def test_seed_tables_give_the_mean_spread_and_per_seed_verdicts() -> None:
    from kmerl.model.evaluation.table import seeds_markdown

    keys = {"task": "t", "lead_subset": "all12", "method": "zero_shot_text"}
    results = pl.DataFrame([
        {**keys, "model": model, "seed": seed, "macro_auroc": value}
        for model, seed, value in [("kmerl", 0, 0.70), ("kmerl", 1, 0.80), ("kmerl", 2, 0.75),
                                   ("merl_baseline", 0, 0.60), ("merl_baseline", 1, 0.70), ("merl_baseline", 2, 0.80),
                                   ("untrained", 0, 0.55)]
    ])  # fmt: skip
    differences = pl.DataFrame([
        {**keys, "model": "kmerl", "reference": "merl_baseline", "seed": seed, "difference": diff,
         "excludes_zero": excludes}
        for seed, diff, excludes in [(0, 0.10, True), (1, 0.10, False), (2, -0.05, True)]
    ])  # fmt: skip
    table = seeds_markdown(results, differences, "kmerl")
    assert "| t | all12 | zero_shot_text | 0.750 ± 0.050 | 0.700 ± 0.100 | 0.550 (1 run) |" in table
    assert "| t | all12 | zero_shot_text | merl_baseline | +0.050 | [-0.050, +0.100] | 1/3 | 1/3 |" in table


def test_the_public_api_gives_the_scores_the_evaluation_reports(
    trained: Path, feature_store: FeatureStore, shared_data: Path, tmp_path: Path
) -> None:
    from kmerl.model import embed, load_encoder, probe, zero_shot
    from kmerl.model.evaluation.archive import ArchiveError

    task = ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")
    settings = EvaluationConfig(bootstrap=0, lead_subsets=("limb3",), probe_fractions=(1.0,), untrained_reference=False)
    evaluation = evaluate_encoder(trained / "model.pt", feature_store, [task], TEXT_ENCODER, settings)
    names = evaluation.results["classes"][0].to_list()
    reported = evaluation.scores.filter(pl.col("method") == "zero_shot_text").select("class", "record_id", "score")

    model = load_encoder(trained / "model.pt")
    test = embed(model, feature_store, "test", leads="limb3")
    scores = zero_shot(model, test, names, TEXT_ENCODER)
    ours = pl.DataFrame({
        "class": np.repeat(names, len(test.record_ids)).tolist(),
        "record_id": test.record_ids * len(names),
        "ours": scores.T.reshape(-1).astype(np.float64),
    })  # fmt: skip
    joined = reported.join(ours, on=["class", "record_id"])
    assert joined.height == reported.height  # every scored PTB-XL test record, each class
    np.testing.assert_allclose(joined["ours"], joined["score"], rtol=1e-5, atol=1e-6)

    train_set = embed(model, feature_store, "train", leads=("I", "II"))
    labels = task.label_matrix(train_set.labels)
    assert probe(train_set, labels, test).shape == (len(test.record_ids), len(task.classes))

    truncated = tmp_path / "model.pt"
    truncated.write_bytes((trained / "model.pt").read_bytes()[:500])
    with pytest.raises(ArchiveError, match="not a readable kmerl encoder"):
        load_encoder(truncated)


def test_an_exported_encoder_loads_to_the_same_outputs_and_carries_a_model_card(trained: Path, tmp_path: Path) -> None:
    import torch

    from kmerl.cli import main
    from kmerl.model import load_encoder

    (trained / "evaluation-x").mkdir(exist_ok=True)
    (trained / "evaluation-x" / "results.md").write_text("| task | leads | method | kmerl | untrained |\n")
    assert main(["export", str(tmp_path / "export"), "--encoder", str(trained / "model.pt")]) == 0
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (tmp_path / "export" / "README.md").read_text()
    assert "100 Hz" in card and "| kmerl | untrained |" in card
    original, exported = load_encoder(trained / "model.pt"), load_encoder(tmp_path / "export")
    signal = torch.randn(3, 12, 1000)
    leads = torch.ones(3, 12, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(
            original.encode_ecg(signal, leads).embedding, exported.encode_ecg(signal, leads).embedding
        )
    assert main(["export", str(tmp_path / "again"), "--encoder", str(tmp_path / "missing.pt")]) == 2
