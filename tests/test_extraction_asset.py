"""report_knowledge and report_corpus_knowledge through a real Dagster instance, on the
lexicon (the LLM backends are materialized in test_extraction_server.py)."""

from pathlib import Path

import polars as pl
from dagster import DagsterInstance

from assets.shared.keys import CORPUS_KNOWLEDGE, ECG_SIGNALS, EXTRACTION_PROMPT, REPORT_KNOWLEDGE
from assets.shared.metadata import metadata_values
from kmerl.config import KmerlConfig
from kmerl.corpora import PtbXlReports
from kmerl.extraction import ExtractionConfig, KnowledgeStore, ServerConfig, open_audit
from kmerl.ingest import IngestConfig
from kmerl.sources import PtbXlSource, WfdbFolderSource
from pipeline.definitions import defs
from pipeline.defs import build_definitions
from pipeline.defs.jobs import CORPORA_JOB, PER_SOURCE_JOB


def test_report_knowledge_is_defined_per_source_downstream_of_ecg_signals() -> None:
    graph = defs.resolve_asset_graph()
    node = graph.get(REPORT_KNOWLEDGE)
    assert node.parent_keys == {ECG_SIGNALS, EXTRACTION_PROMPT}  # the prompt, observed by prompt_sensor
    assert node.partitions_def == graph.get(ECG_SIGNALS).partitions_def
    assert node.code_version  # the prompt version: a prompt edit makes the asset stale


def test_report_knowledge_materializes_with_quality_checks_audit_and_a_stable_data_version(
    tmp_path: Path, ptbxl_root: Path, wfdb_samples_root: Path
) -> None:
    config = KmerlConfig(
        home=tmp_path,
        sources=[PtbXlSource(name="ptbxl", root=ptbxl_root), WfdbFolderSource(name="samples", root=wfdb_samples_root)],
        ingest=IngestConfig(workers=1),
        extraction=ExtractionConfig(backend="lexicon"),
    )
    job = build_definitions(config).resolve_job_def(PER_SOURCE_JOB)
    with DagsterInstance.ephemeral() as instance:
        versions = []
        for _ in range(2):
            result = job.execute_in_process(partition_key="ptbxl", instance=instance)
            assert result.success
            (event,) = result.asset_materializations_for_node("report_knowledge")
            versions.append(event.tags["dagster/data_version"])
            checks = {e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()}
        samples = job.execute_in_process(partition_key="samples", instance=instance)
    metadata = metadata_values(event.metadata)
    (samples_event,) = samples.asset_materializations_for_node("report_knowledge")
    summary = metadata_values(samples_event.metadata)["sources"].splitlines()  # every source on any partition's page
    assert summary[0].startswith("| source | reports | distinct |") and len(summary) == 4
    assert summary[2].startswith("| ptbxl | 500 | 243 | 0 | 243 | 0 | 0 | development: ")
    assert summary[3].startswith("| samples | 2 | 2 | 2 | 0 | 0 | 0 |")
    assert metadata["dagster/row_count"] == 500 and metadata["distinct_reports"] == 243
    assert metadata["cached"] == 243 and metadata["extracted"] == 0 and metadata["llm_requests"] == 0  # second run
    assert "| lexicon | development | 309 |" in metadata["quality"]  # folds 1-7 tune, 8-10 validate
    assert "| lexicon | validation | 191 |" in metadata["quality"]
    assert "| unmatched statement |" in metadata["vocabulary_gaps"]
    assert versions[0] == versions[1]
    assert checks["extraction_validity"] == (True, "ERROR")
    assert checks["label_agreement"] == (True, "WARN")  # the lexicon's micro F1 is ~0.8
    store = KnowledgeStore(tmp_path / "store" / "report_knowledge")
    records = store.records(["ptbxl"])
    assert records.height == 500 and records["record_id"].str.starts_with("ptbxl/").all()
    joined = records.join(store.entities(metadata["knowledge_version"]), on="report_key")
    assert joined.filter(pl.col("record_id") == "ptbxl/1")["entity_id"].sort().to_list() == [
        "low_limb_lead_voltage",  # "periphere niederspannung": low voltage in the limb leads only
        "sinus_rhythm",
    ]
    assert sorted(p.suffix for p in (store.root / "quality").iterdir()) == [".md", ".md", ".parquet", ".parquet"]
    with open_audit(store) as db:
        assert db.execute("SELECT count(*) FROM record_knowledge").fetchall() == [(502,)]  # both sources


def test_the_in_process_engine_starts_only_when_a_report_needs_it(tmp_path: Path) -> None:
    """A run whose reports are all cached must not pay the engine start (15-60 s, ~5 GB)."""
    from kmerl.extraction import open_backend

    with open_backend(ExtractionConfig(backend="vllm"), tmp_path) as backend:
        assert not backend.started and backend.stats.requests == 0
    assert not any(tmp_path.iterdir())  # not even the embedded model was converted


def test_a_run_may_override_what_the_prompt_version_does_not_hash_and_nothing_else(
    tmp_path: Path, wfdb_samples_root: Path
) -> None:
    """One extraction config is both report_knowledge's code version and what its run uses."""
    config = KmerlConfig(
        home=tmp_path,
        sources=[WfdbFolderSource(name="samples", root=wfdb_samples_root)],
        ingest=IngestConfig(workers=1),
        extraction=ExtractionConfig(backend="lexicon"),
    )
    job = build_definitions(config).resolve_job_def(PER_SOURCE_JOB)

    def run_with(extraction: ExtractionConfig):
        settings = {"settings": extraction.model_dump_json(), "home": str(tmp_path)}
        return job.execute_in_process(
            partition_key="samples",
            instance=instance,
            raise_on_error=False,
            run_config={"resources": {"extractor": {"config": settings}}},
        )

    with DagsterInstance.ephemeral() as instance:
        elsewhere = config.extraction.model_copy(update={"server": ServerConfig(url="http://elsewhere:8000/v1")})
        assert run_with(elsewhere).success
        refused = run_with(config.extraction.model_copy(update={"backend": "vllm"}))
    assert not refused.success
    (failure,) = refused.get_step_failure_events()
    assert failure.step_key == "report_knowledge"
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "prompt version" in message and "reload the code location" in message


def test_a_report_corpus_is_a_partition_of_its_own_asset_that_feeds_nothing(tmp_path: Path, shared_data: Path) -> None:
    rows = pl.read_csv(shared_data / "ptbxl-reports" / "ptbxl_reports.csv", infer_schema=False)
    corpus_file = tmp_path / "reports.csv"
    pl.concat([rows.filter(pl.col("strat_fold") == fold).head(60) for fold in ("3", "8")]).write_csv(corpus_file)
    config = KmerlConfig(
        home=tmp_path,
        corpora=[PtbXlReports(name="sample_reports", path=corpus_file)],
        extraction=ExtractionConfig(backend="lexicon"),
    )
    defs = build_definitions(config)
    graph = defs.resolve_asset_graph()
    assert graph.get(CORPUS_KNOWLEDGE).child_keys == set() and graph.get(CORPUS_KNOWLEDGE).parent_keys == set()
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(CORPORA_JOB).execute_in_process(partition_key="sample_reports", instance=instance)
        assert result.success
        assert instance.fetch_materializations(ECG_SIGNALS, limit=1).records == []
    (event,) = result.asset_materializations_for_node("report_corpus_knowledge")
    metadata = metadata_values(event.metadata)
    assert metadata["rows"] == 120 and metadata["dagster/row_count"] == 120
    assert (
        "| lexicon | development | 60 |" in metadata["quality"]
        and "| lexicon | validation | 60 |" in metadata["quality"]
    )
    assert "| unmatched statement |" in metadata["vocabulary_gaps"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"row_accounting": True, "extraction_validity": True, "label_agreement": True}
    store = KnowledgeStore(tmp_path / "store" / "report_knowledge")
    assert store.current("sample_reports").records == 120
    assert not (tmp_path / "store" / "ecg_signals").exists()
