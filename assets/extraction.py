"""Stage 2: report text -> structured cardiac knowledge, one partition per source."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from assets.ingest import ecg_signals, source_partitions
from kmerl.extraction import (
    KnowledgeStore,
    LexiconExtractor,
    QualityReport,
    Vocabulary,
    build_audit_database,
    describe_extractor,
    evaluate,
    extract_reports,
    load_vocabulary,
    quality_markdown,
)
from kmerl.hashing import stable_hash
from kmerl.store import SignalStore
from pipeline.config import CONFIG
from pipeline.metadata import counts_markdown
from pipeline.resources import ExtractorResource, StorageResource


@asset(
    partitions_def=source_partitions,
    deps=[ecg_signals],
    code_version=describe_extractor(CONFIG.extraction).prompt_version,
    group_name="extraction",
    kinds={"parquet", "duckdb", "vllm"},
)
def report_knowledge(
    context: AssetExecutionContext, storage: StorageResource, extractor: ExtractorResource
) -> MaterializeResult:
    """Cardiac entities (present / absent / uncertain, leads, evidence) of every report of
    the source, under the current prompt version; earlier versions stay in the store
    and in the DuckDB audit database."""
    source = context.partition_key
    vocabulary = load_vocabulary(extractor.config.vocabulary)
    signals = SignalStore.open(storage.signal_store, sources=[source], access="parquet")
    records = signals.metadata(["record_id", "report", "labels"]).collect()
    store = KnowledgeStore(storage.knowledge_store)
    log = context.log
    with extractor.open(vocabulary) as active:
        run = extract_reports(
            records["report"].to_list(),
            active,
            store,
            vocabulary,
            reports_per_part=extractor.config.reports_per_part,
            on_progress=lambda progress: log.info(f"{source}: {progress}"),
            progress_interval_s=extractor.config.progress_interval_s,
        )
    records = records.with_columns(pl.Series("report_key", run.report_keys, pl.String))
    store.write_records(source, records.select("record_id", "report_key", "labels"))
    quality = _quality(store, source, records, run.knowledge_version, vocabulary, extractor)
    audit = build_audit_database(store, storage.knowledge_store / "audit.duckdb")
    provenance = store.provenance(run.knowledge_version)
    entities = store.entities(run.knowledge_version).join(records.select("report_key").unique(), on="report_key")
    metadata: dict[str, object] = {
        "dagster/row_count": records.height,
        "knowledge_version": run.knowledge_version,
        "prompt_version": provenance.prompt_version,
        "model": provenance.model or "lexicon",
        "reports": run.inputs,
        "distinct_reports": run.unique,
        "cached": run.cached,
        "extracted": run.extracted,
        "quarantined": run.quarantined,
        "llm_requests": run.llm_requests,
        "finish_reasons": counts_markdown(run.finish_reasons, "finish_reason", "requests"),
        "audit_database": MetadataValue.path(str(audit)),
    }
    if quality:
        metadata["quality"] = MetadataValue.md(quality_markdown(quality, top=20))
    data_version = stable_hash("knowledge", entities.sort(entities.columns).rows(), run.quarantined)
    return MaterializeResult(metadata=metadata, data_version=DataVersion(data_version))


def _quality(
    store: KnowledgeStore,
    source: str,
    records: pl.DataFrame,
    version: str,
    vocabulary: Vocabulary,
    extractor: ExtractorResource,
) -> list[QualityReport]:
    """Scores against the source's SCP labels (PTB-XL), with the lexicon beside the LLM."""
    with_labels = records.filter(pl.col("labels").list.eval(pl.element().struct.field("system") == "scp").list.any())
    if with_labels.is_empty():
        return []
    provenance = store.provenance(version)
    reports = [
        evaluate(
            _label(provenance.extractor, provenance.model), version, with_labels, store.entities(version), vocabulary
        )
    ]
    if extractor.config.compare_with_lexicon and provenance.extractor != "lexicon":
        lexicon = LexiconExtractor(vocabulary, extractor.config.max_mentions)
        baseline = extract_reports(with_labels["report"].to_list(), lexicon, store, vocabulary)
        reports.insert(
            0,
            evaluate(
                "lexicon",
                baseline.knowledge_version,
                with_labels,
                store.entities(baseline.knowledge_version),
                vocabulary,
            ),
        )
    for report in reports:
        report.write(store.root / "quality", f"{source}-{report.knowledge_version}")
    return reports


def _label(extractor: str, model: str | None) -> str:
    return "lexicon" if extractor == "lexicon" else f"llm: {model}"
