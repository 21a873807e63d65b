"""The OpenAI-compatible path: a real vLLM server process (``python -m
vllm.entrypoints.openai.api_server``) with the embedded model, the client with
bounded concurrency, and the report_knowledge asset materialized through it."""

import shutil
from pathlib import Path

from dagster import DagsterInstance, evaluate_automation_conditions, instance_for_test

from assets.shared.keys import ECG_SIGNALS, REPORT_KNOWLEDGE
from assets.shared.metadata import metadata_values
from kmerl.config import KmerlConfig
from kmerl.extraction import (
    DEFAULT_PROMPT,
    ExtractionConfig,
    KnowledgeSchema,
    KnowledgeStore,
    LlmExtractor,
    describe_extractor,
    extract_reports,
    load_prompt,
    load_vocabulary,
    open_audit,
)
from kmerl.extraction.config import ServerConfig
from kmerl.extraction.embedded_model import EMBEDDED_MODEL_ID
from kmerl.extraction.openai_server import OpenAIServerBackend
from kmerl.ingest import IngestConfig
from kmerl.sources import WfdbFolderSource
from pipeline.defs import build_definitions
from pipeline.defs.jobs import EXTRACT_JOB, PER_SOURCE_JOB
from tests.extraction_support import bad_inputs, distinct_reports

VOCABULARY = load_vocabulary()
CONFIG = ExtractionConfig()


def test_real_reports_through_the_openai_server_with_bounded_concurrency(
    vllm_server, ptbxl_root: Path, tmp_path: Path
) -> None:
    server = ServerConfig(url=vllm_server.base_url, concurrency=4)
    config = CONFIG.model_copy(update={"backend": "server", "server": server})
    backend = OpenAIServerBackend(vllm_server.base_url, CONFIG.model, EMBEDDED_MODEL_ID, server)
    extractor = LlmExtractor(backend, load_prompt(DEFAULT_PROMPT), VOCABULARY, config)
    version = extractor.provenance.knowledge_version
    # the server's answers come from its own engine and batches: not the in-process engine's version
    assert version == describe_extractor(config).knowledge_version != describe_extractor(CONFIG).knowledge_version
    reports = [*distinct_reports(ptbxl_root, 12), bad_inputs()["negated_en"], ""]
    store = KnowledgeStore(tmp_path)
    run = extract_reports(reports, extractor, store, VOCABULARY)
    assert run.unique == 14 and run.extracted == 14 and run.quarantined == 0
    assert run.finish_reasons == {"stop": run.llm_requests} and run.llm_requests == 13
    schema = KnowledgeSchema(VOCABULARY, CONFIG.max_mentions)
    for raw in store.table("reports", run.knowledge_version)["knowledge_json"]:
        schema.validate_json(raw)
    again = extract_reports(reports, extractor, store, VOCABULARY)
    assert again.llm_requests == 0 and again.cached == 14


def _server_config(home: Path, wfdb_samples_root: Path, server_url: str, prompt: Path = DEFAULT_PROMPT) -> KmerlConfig:
    return KmerlConfig(
        home=home,
        sources=[WfdbFolderSource(name="wfdb_samples", root=wfdb_samples_root)],
        ingest=IngestConfig(workers=1),
        extraction=ExtractionConfig(backend="server", server=ServerConfig(url=server_url), prompt=prompt),
    )


def test_report_knowledge_materializes_through_the_server(
    vllm_server, llm_home: Path, tmp_path: Path, wfdb_samples_root: Path
) -> None:
    config = _server_config(llm_home, wfdb_samples_root, vllm_server.base_url)
    config = config.model_copy(update={"store": str(tmp_path / "store")})
    with DagsterInstance.ephemeral() as instance:
        result = (
            build_definitions(config)
            .resolve_job_def(PER_SOURCE_JOB)
            .execute_in_process(partition_key="wfdb_samples", instance=instance)
        )
    assert result.success
    (event,) = result.asset_materializations_for_node("report_knowledge")
    metadata = metadata_values(event.metadata)
    assert (
        metadata["dagster/row_count"] == 2
        and metadata["extracted"] + metadata["quarantined"] == metadata["distinct_reports"]
    )
    assert metadata["model"] == EMBEDDED_MODEL_ID and metadata["knowledge_version"].startswith("llm-")
    assert KnowledgeStore(tmp_path / "store" / "report_knowledge").records(["wfdb_samples"]).height == 2


def test_a_prompt_edit_reextracts_only_the_knowledge_under_a_new_version(
    vllm_server, llm_home: Path, tmp_path: Path, wfdb_samples_root: Path
) -> None:
    """Edit a prompt file: report_knowledge goes stale and is requested by the
    automation, ecg_signals is not; the re-run writes a new knowledge version and
    the earlier one stays queryable in the store and the audit database."""
    prompt = tmp_path / "prompt"
    shutil.copytree(DEFAULT_PROMPT, prompt)
    config = _server_config(llm_home, wfdb_samples_root, vllm_server.base_url, prompt)
    config = config.model_copy(update={"store": str(tmp_path / "store")})
    with instance_for_test() as instance:
        before = build_definitions(config)
        before.resolve_job_def(PER_SOURCE_JOB).execute_in_process(partition_key="wfdb_samples", instance=instance)
        evaluation = evaluate_automation_conditions(defs=before, instance=instance)

        (prompt / "system.md").write_text((prompt / "system.md").read_text() + "\nAnswer for a cardiologist.\n")
        after = build_definitions(config)
        assert (
            after.resolve_asset_graph().get(REPORT_KNOWLEDGE).code_version
            != before.resolve_asset_graph().get(REPORT_KNOWLEDGE).code_version
        )
        evaluation = evaluate_automation_conditions(defs=after, instance=instance, cursor=evaluation.cursor)
        assert evaluation.get_requested_partitions(REPORT_KNOWLEDGE) == {"wfdb_samples"}
        assert evaluation.get_num_requested(ECG_SIGNALS) == 0

        result = after.resolve_job_def(EXTRACT_JOB).execute_in_process(partition_key="wfdb_samples", instance=instance)
        assert result.success
        ingests = instance.fetch_materializations(ECG_SIGNALS, limit=10).records
        assert len(ingests) == 1  # the signals were not recomputed
    assert len(result.asset_materializations_for_node("report_knowledge")) == 1
    store = KnowledgeStore(tmp_path / "store" / "report_knowledge")
    versions = store.versions()["knowledge_version"].to_list()
    assert len([v for v in versions if v.startswith("llm-")]) == 2
    with open_audit(store) as db:
        per_version = db.execute(
            "SELECT knowledge_version, count(*) FROM reports WHERE knowledge_version LIKE 'llm-%' GROUP BY ALL"
        ).fetchall()
    assert len(per_version) == 2 and all(count == 2 for _, count in per_version)
