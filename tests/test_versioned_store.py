"""The one versioned store, and the stores that keep their versions with it: the knowledge
store's sources and the training runs (the signal and feature stores are tested with
their builders)."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from upath import UPath

from kmerl.extraction import KnowledgeStore, LexiconExtractor, extract_reports, load_vocabulary
from kmerl.model.runs import RunStore
from kmerl.model.train import train
from kmerl.versioned_store import Manifest, VersionedStore, published_stores
from tests.model_fixtures import tiny_config


class _Counts(Manifest):
    rows: int


def _manifest(version: str, rows: int) -> _Counts:
    return _Counts(version=version, created_at=datetime.now(UTC), rows=rows)


@pytest.mark.parametrize("where", ["local", "memory"])
def test_publishing_switches_current_and_keeps_every_earlier_version(tmp_path: Path, where: str) -> None:
    root = tmp_path / "store" if where == "local" else UPath(f"memory://versioned-{tmp_path.name}/store")
    store = VersionedStore(root, _Counts)
    assert store.current() is None
    with pytest.raises(FileNotFoundError, match="nothing is published"):
        store.load()
    store.publish(_manifest("a", 1))
    store.publish(_manifest("b", 2))
    assert store.current() == "b" and store.load().rows == 2
    assert store.load("a").rows == 1  # the earlier version stays readable
    assert [m.version for m in store.history()] == ["a", "b"]
    store.publish(_manifest("a", 99))  # a version is written once: republishing only switches CURRENT
    assert store.current() == "a" and store.load().rows == 1
    with pytest.raises(FileNotFoundError, match="version c is not published"):
        store.load("c")


def test_published_stores_are_the_folders_with_a_current_version(tmp_path: Path) -> None:
    VersionedStore(tmp_path / "ptbxl", _Counts).publish(_manifest("a", 1))
    (tmp_path / "unpublished" / "versions").mkdir(parents=True)
    assert published_stores(tmp_path) == ["ptbxl"]


def test_a_source_publishes_its_knowledge_and_the_content_hash_ignores_the_version(tmp_path: Path) -> None:
    """Two knowledge versions that say the same about a source's reports have one content hash:
    what keeps everything downstream of a no-op prompt edit fresh."""
    store = KnowledgeStore(tmp_path)
    vocabulary = load_vocabulary()
    reports = ["sinus rhythm. normal ECG", "atrial fibrillation", "sinus rhythm. normal ECG"]
    with pytest.raises(FileNotFoundError, match="no knowledge is published for source 'demo'"):
        store.current("demo")
    published = []
    for max_mentions in (12, 13):  # another lexicon version, the same entities for these reports
        run = extract_reports(reports, LexiconExtractor(vocabulary, max_mentions), store, vocabulary)
        links = {"record_id": ["demo/1", "demo/2", "demo/3"], "report_key": run.report_keys, "labels": [[]] * 3}
        store.write_records("demo", pl.DataFrame(links))
        published.append(store.publish("demo", run.knowledge_version))
    first, second = published
    assert first.knowledge_version != second.knowledge_version and first.version != second.version
    assert first.content_hash == second.content_hash
    assert store.current("demo") == second
    entities = store.record_entities(["demo"])
    assert set(entities.filter(entities["record_id"] == "demo/2")["entity_id"]) == {"atrial_fibrillation"}


def test_a_finished_run_is_published_and_becomes_the_current_one(feature_store_root: Path, tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    with pytest.raises(FileNotFoundError, match="no finished training run"):
        runs.current()
    with pytest.raises(FileNotFoundError, match="has not finished"):
        runs.publish("unknown")
    config = tiny_config(epochs=1)
    result = train(config, feature_store_root, runs.run("k1").root)
    manifest = runs.publish("k1")
    assert runs.current() == manifest and runs.model_file(manifest) == result.model_path
    assert manifest.feature_store_version == result.feature_store_version and manifest.config == config
    assert manifest.epochs == 1 and manifest.steps == result.steps and "train_loss" in manifest.final
