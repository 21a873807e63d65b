"""report_knowledge through a real Dagster instance, on the lexicon (the LLM
backends are materialized in test_extraction_server.py)."""

from pathlib import Path

import duckdb
import polars as pl
from dagster import DagsterInstance, materialize

from assets.extraction import report_knowledge
from assets.ingest import ecg_signals
from kmerl.extraction import KnowledgeStore
from pipeline.definitions import defs
from pipeline.resources import ExtractorResource, StorageResource


def test_report_knowledge_is_defined_per_source_downstream_of_ecg_signals() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(report_knowledge.key)
    assert node.parent_keys == {ecg_signals.key}
    assert report_knowledge.partitions_def == ecg_signals.partitions_def
    assert node.code_version  # the prompt version: a prompt edit makes the asset stale


def test_report_knowledge_materializes_with_quality_and_audit_and_a_stable_data_version(tmp_path: Path) -> None:
    resources = {"storage": StorageResource(root=str(tmp_path)), "extractor": ExtractorResource(backend="lexicon")}
    with DagsterInstance.ephemeral() as instance:
        versions = []
        for _ in range(2):
            result = materialize(
                [ecg_signals, report_knowledge], partition_key="ptbxl", resources=resources, instance=instance
            )
            assert result.success
            (event,) = result.asset_materializations_for_node("report_knowledge")
            versions.append(event.tags["dagster/data_version"])
    metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
    assert metadata["dagster/row_count"] == 500 and metadata["distinct_reports"] == 243
    assert metadata["cached"] == 243 and metadata["extracted"] == 0 and metadata["llm_requests"] == 0  # second run
    assert "| lexicon | 500 |" in metadata["quality"]
    assert versions[0] == versions[1]
    store = KnowledgeStore(tmp_path / "report_knowledge")
    records = store.records(["ptbxl"])
    assert records.height == 500 and records["record_id"].str.starts_with("ptbxl/").all()
    joined = records.join(store.entities(metadata["knowledge_version"]), on="report_key")
    assert joined.filter(pl.col("record_id") == "ptbxl/1")["entity_id"].sort().to_list() == [
        "low_qrs_voltage",
        "sinus_rhythm",
    ]
    assert sorted(p.suffix for p in (tmp_path / "report_knowledge" / "quality").iterdir()) == [".md", ".parquet"]
    with duckdb.connect(metadata["audit_database"], read_only=True) as db:
        assert db.execute("SELECT count(*) FROM record_knowledge").fetchall() == [(500,)]
