"""The OpenAI-compatible path: a real vLLM server process (``python -m
vllm.entrypoints.openai.api_server``) with the embedded model, the client with
bounded concurrency, and the report_knowledge asset materialized through it."""

from pathlib import Path

from dagster import DagsterInstance, materialize

from assets.extraction import report_knowledge
from assets.ingest import ecg_signals
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
)
from kmerl.extraction.config import ServerConfig
from kmerl.extraction.embedded_model import EMBEDDED_MODEL_ID
from kmerl.extraction.openai_server import OpenAIServerBackend
from pipeline.resources import ExtractorResource, StorageResource
from tests.extraction_support import bad_inputs, distinct_reports

VOCABULARY = load_vocabulary()
CONFIG = ExtractionConfig()


def test_real_reports_through_the_openai_server_with_bounded_concurrency(
    vllm_server, ptbxl_root: Path, tmp_path: Path
) -> None:
    server = ServerConfig(url=vllm_server.base_url, concurrency=4)
    backend = OpenAIServerBackend(vllm_server.base_url, CONFIG.model, EMBEDDED_MODEL_ID, server)
    extractor = LlmExtractor(backend, load_prompt(DEFAULT_PROMPT), VOCABULARY, CONFIG)
    # the version does not depend on how the model is served: the in-process engine's cache is this one
    assert extractor.provenance.knowledge_version == describe_extractor(CONFIG).knowledge_version
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


def test_report_knowledge_materializes_through_the_server(vllm_server, llm_home: Path, tmp_path: Path) -> None:
    extractor = ExtractorResource(backend="server", server_url=vllm_server.base_url, home=str(llm_home))
    resources = {"storage": StorageResource(root=str(tmp_path)), "extractor": extractor}
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [ecg_signals, report_knowledge], partition_key="wfdb_samples", resources=resources, instance=instance
        )
    assert result.success
    (event,) = result.asset_materializations_for_node("report_knowledge")
    metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
    assert (
        metadata["dagster/row_count"] == 2
        and metadata["extracted"] + metadata["quarantined"] == metadata["distinct_reports"]
    )
    assert metadata["model"] == EMBEDDED_MODEL_ID and metadata["knowledge_version"].startswith("llm-")
    assert KnowledgeStore(tmp_path / "report_knowledge").records(["wfdb_samples"]).height == 2
