"""Shared inputs of the feature store and model tests, built from the real sample archives.

The signal store and feature store live in pytest's base temporary folder:
every test module asks for them, and the second request finds every shard and
chunk already written (both builders are content-addressed), so they are built
once per test run.

Knowledge stand-in: until an LLM extraction output is available to the tests,
``record_entities`` are the records' own source labels (PTB-XL cardiologist SCP
codes, Challenge SNOMED CT codes) mapped onto a vocabulary built from
``scp_statements.csv`` and the Challenge ``dx_mapping_*.csv`` tables.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from kmerl.features import FeatureStore, build_feature_store, entities_from_labels, label_vocabulary
from kmerl.ingest import IngestConfig, ingest_source
from kmerl.model.config import EncoderConfig, MaskingConfig, ObjectiveConfig, OptimConfig, TrainConfig
from kmerl.signals import SignalStore
from kmerl.sources import ChallengeSource, PtbXlSource
from kmerl.text_encoder import MiniLmEncoder

TEXT_ENCODER = MiniLmEncoder()  # loaded on first use, shared by every test module


def tiny_config(**changes: object) -> TrainConfig:
    """A model small enough for a few training steps in a test."""
    base = TrainConfig(
        encoder=EncoderConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, embed_dim=16),
        masking=MaskingConfig(),
        objective=ObjectiveConfig(query_heads=2),
        optim=OptimConfig(lr=3e-3),
        epochs=2,
        batch_size=16,
        train_split="val",  # 95 rows: a few steps per epoch
        val_split="test",
        log_every_steps=1,
    )
    return TrainConfig.model_validate(base.model_dump() | changes)


@pytest.fixture(scope="session")
def signal_store_root(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.getbasetemp() / "model-signal-store"
    config = IngestConfig(workers=1, records_per_shard=128)
    ingest_source(PtbXlSource(name="ptbxl", root=shared_data / "ptbxl"), root, config)
    ingest_source(ChallengeSource(name="cinc2021", root=shared_data / "cinc2021"), root, config)
    return root


@pytest.fixture(scope="session")
def signal_store(signal_store_root: Path) -> SignalStore:
    return SignalStore.open(signal_store_root, access="parquet")


@pytest.fixture(scope="session")
def vocabulary(shared_data: Path) -> pl.DataFrame:
    return label_vocabulary(shared_data / "ptbxl" / "scp_statements.csv", shared_data / "cinc2021")


@pytest.fixture(scope="session")
def record_entities(signal_store: SignalStore, vocabulary: pl.DataFrame) -> pl.DataFrame:
    return entities_from_labels(signal_store.metadata(["record_id", "labels"]).collect(), vocabulary)


@pytest.fixture(scope="session")
def feature_store_root(
    tmp_path_factory: pytest.TempPathFactory,
    signal_store: SignalStore,
    record_entities: pl.DataFrame,
    vocabulary: pl.DataFrame,
) -> Path:
    root = tmp_path_factory.getbasetemp() / "model-feature-store"
    build_feature_store(signal_store, record_entities, vocabulary, root, TEXT_ENCODER)
    return root


@pytest.fixture(scope="session")
def feature_store(feature_store_root: Path) -> FeatureStore:
    return FeatureStore.open(feature_store_root)
