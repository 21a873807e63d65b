"""Rotated test folds: every labelled record scored once, never by an encoder that
pretrained on it, pooled into one table with the untrained twin beside it."""

from pathlib import Path

import polars as pl
import pytest

from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation import ptbxl_superclass_task
from kmerl.model.rotation import RotationInputs, rotate, rotate_seeds, rotation_folds, rotation_splits
from kmerl.signals import SignalStore
from tests.model_fixtures import TEXT_ENCODER, tiny_config

pytestmark = pytest.mark.slow  # pretrains once per rotation


@pytest.fixture
def inputs(
    signal_store: SignalStore, record_entities: pl.DataFrame, vocabulary: pl.DataFrame, shared_data: Path
) -> RotationInputs:
    task = ptbxl_superclass_task(shared_data / "ptbxl" / "scp_statements.csv")
    return RotationInputs(signal_store, record_entities, vocabulary, [task], TEXT_ENCODER)


def test_a_record_keeps_its_archive_fold_or_its_hash_and_each_rotation_tests_one_fold() -> None:
    metadata = pl.DataFrame({"record_id": ["a", "b", "c", "d"], "fold": [1, 6, None, None]})
    rotations = rotation_folds(metadata, 5)
    assert rotations["rotation"].to_list()[:2] == [0, 0]  # PTB-XL folds 1 and 6: the same rotation of 5
    assert rotations.equals(rotation_folds(metadata, 5))  # hashed ids land in the same fold every run
    for rotation in range(5):
        splits = rotation_splits(rotations, rotation, 5).join(rotations, on="record_id")
        assert (splits.filter(pl.col("split") == "test")["rotation"] == rotation).all()
        assert not (splits.filter(pl.col("split") == "train")["rotation"] == rotation).any()
    halves = rotation_folds(metadata, 2)
    two = rotation_splits(halves, 0, 2).join(halves, on="record_id")
    assert set(two.filter(pl.col("rotation") == 1)["split"]) == {"train"}  # no fold to spare for validation


def test_every_labelled_record_is_scored_once_by_an_encoder_that_never_saw_it(
    inputs: RotationInputs, tmp_path: Path
) -> None:
    settings = EvaluationConfig(bootstrap=20, lead_subsets=("all12",), probe_fractions=(1.0,))
    base = tiny_config(epochs=1, train_split="train", val_split="val")
    pooled, pooled_dir = rotate(inputs, base, settings, tmp_path, folds=3)

    one_class = pooled.scores["class"][0]
    scored = pooled.scores.filter(
        (pl.col("model") == "kmerl") & (pl.col("method") == "zero_shot_text") & (pl.col("class") == one_class)
    )
    assert scored["record_id"].is_unique().all()
    ptbxl = inputs.signal_store.metadata(["record_id", "source", "fold"]).collect().filter(pl.col("source") == "ptbxl")
    assert scored.height > 400  # the sample's labelled PTB-XL records, not fold 10's 66
    assert set(scored["record_id"]) <= set(ptbxl["record_id"])
    for rotation in (0, 1, 2):  # each rotation's test records are exactly its fold, scored by its own encoder
        tested = pl.read_parquet(next((tmp_path / f"rotation-{rotation}").glob("run-*/evaluation-*/scores.parquet")))
        folds = ptbxl.filter(pl.col("record_id").is_in(tested["record_id"].unique().to_list()))["fold"]
        assert ((folds - 1) % 3 == rotation).all()

    rows = pooled.results.filter(pl.col("method") == "probe_100%")
    assert set(rows["model"]) == {"kmerl", "untrained"} and rows["n_test"].to_list() == [scored.height] * 2
    (versus,) = pooled.differences.filter(pl.col("method") == "probe_100%").iter_rows(named=True)
    assert versus["reference"] == "untrained" and versus["n_test"] == scored.height

    again, _ = rotate(inputs, base, settings, tmp_path, folds=3)
    assert again.results.equals(pooled.results)  # resumed from the rotations' runs and evaluations
    assert pl.read_parquet(pooled_dir / "results.parquet").equals(pooled.results)


def test_over_seeds_every_reference_is_trained_per_fold_and_scored_on_the_same_records(
    inputs: RotationInputs, tmp_path: Path
) -> None:
    settings = EvaluationConfig(
        bootstrap=20, lead_subsets=("all12",), probe_fractions=(1.0,), merl_reference=True,
        supervised_reference=True, supervised_epochs=1,
    )  # fmt: skip
    base = tiny_config(epochs=1, train_split="train", val_split="val")
    rotation = rotate_seeds(inputs, base, settings, tmp_path, folds=3, seeds=(0, 1))

    models = {seed: set(rows["model"]) for (seed,), rows in rotation.results.group_by("seed")}
    assert models == {
        0: {"kmerl", "untrained", "merl_baseline", "supervised"},  # the supervised upper reference once
        1: {"kmerl", "untrained", "merl_baseline"},
    }
    for seed in (0, 1):  # the MERL-style baseline pretrained on each fold's training records, per seed
        assert len(list((tmp_path / f"seed-{seed}").glob("rotation-*/merl_baseline-*/model.pt"))) == 3
    full_probe = rotation.results.filter(pl.col("method") == "probe_100%")
    assert full_probe["n_test"].n_unique() == 1  # every model scored on the same pooled records
    paired = rotation.differences.filter((pl.col("seed") == 0) & (pl.col("method") == "probe_100%"))
    assert set(paired["reference"]) == {"untrained", "merl_baseline", "supervised"}
    assert (paired["n_test"] == full_probe["n_test"][0]).all()
    kmerl = rotation.results.filter(pl.col("model") == "kmerl").sort("seed", "method")
    assert kmerl.filter(pl.col("seed") == 0)["macro_auroc"].to_list() != (
        kmerl.filter(pl.col("seed") == 1)["macro_auroc"].to_list()
    )  # each seed pretrains its own encoder
    table = rotation.markdown.read_text()
    assert "## Over seeds 0, 1" in table and "| merl_baseline |" in table
    assert "(1 run)" in table  # the supervised reference, scored for the first seed only
