import ast
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from kmerl.features import FeatureStore, TargetEntities, build_feature_store
from kmerl.features.dataset import FeatureDataset, whole_batch
from kmerl.features.layout import FeatureLayout
from kmerl.signals import SignalStore
from tests.model_fixtures import TEXT_ENCODER


def _row_of(store: FeatureStore, record_id: str) -> tuple[str, int]:
    for split in ("train", "val", "test"):
        ids = store.split(split).metadata(["record_id"])["record_id"].to_list()
        if record_id in ids:
            return split, ids.index(record_id)
    raise AssertionError(f"{record_id} not in the feature store")


def test_rows_carry_the_signal_report_embedding_and_entities(
    feature_store: FeatureStore, signal_store: SignalStore, vocabulary: pl.DataFrame, ptbxl_root: Path
) -> None:
    split, position = _row_of(feature_store, "ptbxl/8")
    rows = feature_store.split(split).rows(np.array([position]))
    item = signal_store[signal_store.position("ptbxl/8")]
    np.testing.assert_array_equal(rows["signal"][0], item.signal)
    np.testing.assert_array_equal(rows["lead_mask"][0], item.lead_mask)

    metadata = feature_store.split(split).metadata()
    report = metadata["report"][position]
    np.testing.assert_allclose(rows["report_embedding"][0], TEXT_ENCODER.encode([report])[0], atol=1e-5)
    assert rows["has_report"][0]

    database = pl.read_csv(ptbxl_root / "ptbxl_database.csv").filter(pl.col("ecg_id") == 8)
    scp_codes = set(ast.literal_eval(database["scp_codes"][0]))  # the file stores a Python dict literal
    entity_ids = vocabulary["entity_id"].to_list()
    positive = {entity_ids[i] for i in np.flatnonzero(rows["entities"][0])}
    assert positive == {f"scp:{code}" for code in scp_codes}


def test_every_record_is_accounted_for(feature_store: FeatureStore, signal_store: SignalStore) -> None:
    manifest = feature_store.manifest
    assert manifest.records_in == len(signal_store) == sum(manifest.rows.values()) + manifest.quarantined
    ids = pl.concat([feature_store.split(s).metadata(["record_id"]) for s in ("train", "val", "test")])["record_id"]
    assert ids.is_unique().all() and set(ids) == set(signal_store.record_ids)
    mentions = manifest.mentions
    assert mentions.mentions_in == mentions.positive + mentions.not_positive + mentions.quarantined
    # PTB-XL folds: 9 is validation, 10 test
    folds = signal_store.metadata(["record_id", "fold"]).collect().filter(pl.col("fold") == 10)["record_id"]
    assert set(folds) <= set(feature_store.split("test").metadata(["record_id"])["record_id"])


def test_unusable_mentions_are_quarantined_and_the_rest_kept(
    tmp_path: Path, signal_store: SignalStore, record_entities: pl.DataFrame, vocabulary: pl.DataFrame
) -> None:
    bad = pl.DataFrame(
        {
            "record_id": ["ptbxl/1", "nowhere/7", "ptbxl/2", "ptbxl/3", None],
            "entity_id": ["not-an-entity", "scp:NORM", "scp:NORM", "scp:IMI", "scp:NORM"],
            "status": ["present", "present", "maybe", "absent", "present"],
        }
    )
    manifest = build_feature_store(
        signal_store, pl.concat([record_entities, bad]), vocabulary, tmp_path / "fs", TEXT_ENCODER
    )
    store = FeatureStore.open(tmp_path / "fs")
    quarantine = store.quarantine()
    reasons = dict(zip(quarantine["record_id"], quarantine["reason"], strict=True))
    assert reasons == {
        "ptbxl/1": "unknown_entity",
        "nowhere/7": "unknown_record",
        "ptbxl/2": "invalid_status",
        "": "missing_record_id",
    }
    assert all(
        detail.startswith(rid or "<no record id>")
        for rid, detail in zip(quarantine["record_id"], quarantine["detail"], strict=True)
    )
    assert manifest.mentions.not_positive == 1 and manifest.mentions.quarantined == 4
    assert sum(manifest.rows.values()) == len(signal_store)  # bad mentions never cost a record


def test_rebuild_reuses_chunks_and_a_change_rewrites_only_its_chunk(
    tmp_path: Path, signal_store: SignalStore, record_entities: pl.DataFrame, vocabulary: pl.DataFrame
) -> None:
    root = tmp_path / "fs"
    first = build_feature_store(signal_store, record_entities, vocabulary, root, TEXT_ENCODER)
    files = {p: p.stat().st_mtime_ns for p in (root / "rows").rglob("*.parquet")}
    again = build_feature_store(signal_store, record_entities, vocabulary, root, TEXT_ENCODER)
    assert again.version == first.version
    assert {p: p.stat().st_mtime_ns for p in (root / "rows").rglob("*.parquet")} == files

    changed = record_entities.filter(pl.col("record_id") != "cinc2021/E00001")
    second = build_feature_store(signal_store, changed, vocabulary, root, TEXT_ENCODER)
    assert second.version != first.version
    assert len({c.key for c in second.chunks} - {c.key for c in first.chunks}) == 1
    # the earlier version stays readable, CURRENT points at the new one
    assert FeatureLayout(root).versions.load(first.version) == first
    assert FeatureStore.open(root).version == second.version


class _FailingEncoder:
    """The real encoder, failing on its n-th call: a build that dies midway."""

    def __init__(self, fail_on_call: int) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.name, self.dim = TEXT_ENCODER.name, TEXT_ENCODER.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed")
        return TEXT_ENCODER.encode(texts)


def test_a_build_killed_midway_finishes_on_rerun_with_the_clean_version(
    tmp_path: Path,
    signal_store: SignalStore,
    record_entities: pl.DataFrame,
    vocabulary: pl.DataFrame,
    feature_store: FeatureStore,
) -> None:
    root = tmp_path / "fs"
    with pytest.raises(RuntimeError, match="killed"):
        build_feature_store(signal_store, record_entities, vocabulary, root, _FailingEncoder(fail_on_call=4))
    assert not (root / "CURRENT").exists()
    done_before = len(list((root / "chunks").glob("*.json")))
    assert 0 < done_before < len(feature_store.manifest.chunks)
    resumed = build_feature_store(signal_store, record_entities, vocabulary, root, TEXT_ENCODER)
    assert resumed.version == feature_store.version
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]


def test_random_batches_equal_the_parquet_rows_and_survive_worker_processes(feature_store: FeatureStore) -> None:
    split = feature_store.split("train")
    positions = np.random.default_rng(0).choice(len(split), size=40, replace=True)
    rows = split.rows(positions)
    table = pl.concat(
        [pl.from_arrow(pq.read_table(f, columns=["record_id", "entities", "has_report"])) for f in split.files]
    )
    np.testing.assert_array_equal(rows["entities"], np.stack(table["entities"].to_numpy())[positions])
    np.testing.assert_array_equal(rows["has_report"], table["has_report"].to_numpy()[positions])
    with pytest.raises(IndexError):
        split.rows(np.array([len(split)]))

    dataset = FeatureDataset(pickle.loads(pickle.dumps(split)))
    loader = DataLoader(dataset, batch_size=32, collate_fn=whole_batch, num_workers=2)
    batches = list(loader)
    assert sum(len(b["signal"]) for b in batches) == len(split)
    first = batches[0]
    assert first["signal"].shape == (32, 12, feature_store.manifest.samples) and first["signal"].dtype == torch.float32
    assert first["entities"].shape == (32, feature_store.manifest.n_entities)
    assert torch.equal(torch.cat([b["position"] for b in batches]), torch.arange(len(split)))


def test_entity_table_matches_the_vocabulary(feature_store: FeatureStore, vocabulary: pl.DataFrame) -> None:
    entities = feature_store.entities()
    assert entities.entity_ids == tuple(vocabulary["entity_id"])
    np.testing.assert_allclose(np.linalg.norm(entities.embeddings, axis=1), 1.0, atol=1e-5)
    index = entities.entity_ids.index("scp:NORM")
    np.testing.assert_allclose(entities.embeddings[index], TEXT_ENCODER.encode(["normal ECG"])[0], atol=1e-5)


def test_broken_vocabulary_and_entity_tables_are_refused(tmp_path: Path, signal_store: SignalStore) -> None:
    with pytest.raises(ValueError, match="repeat"):
        TargetEntities.from_frame(pl.DataFrame({"entity_id": ["a", "a"], "name": ["x", "y"]}))
    with pytest.raises(ValueError, match="lacks columns"):
        TargetEntities.from_frame(pl.DataFrame({"entity_id": ["a"]}))
    vocabulary = pl.DataFrame({"entity_id": ["a"], "name": ["sinus rhythm"]})
    with pytest.raises(ValueError, match="status"):
        build_feature_store(
            signal_store, pl.DataFrame({"record_id": ["x"], "entity_id": ["a"]}), vocabulary, tmp_path, TEXT_ENCODER
        )
    assert not (tmp_path / "CURRENT").exists()
