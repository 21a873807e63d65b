"""Stage 2: report text -> structured cardiac knowledge, one partition per source."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)

from assets import checks
from assets.shared.automation import ON_UPSTREAM_OR_CODE_CHANGE
from assets.shared.keys import ECG_SIGNALS, REPORT_KNOWLEDGE
from assets.shared.metadata import MetadataDict, counts_markdown
from assets.shared.partitions import PIPELINE_GROUP, source_partitions
from assets.shared.pools import LLM_POOL
from assets.shared.resources import AuditDatabaseResource, ExtractorResource, StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.extraction import (
    ExtractionConfig,
    KnowledgeStore,
    LexiconExtractor,
    QualityReport,
    Vocabulary,
    describe_extractor,
    evaluate,
    extract_reports,
    load_vocabulary,
    quality_markdown,
)
from kmerl.signals import SignalStore
from kmerl.storage import is_local


def build_assets(config: KmerlConfig) -> list[AssetsDefinition]:
    checks_config = config.orchestration.checks
    # The prompt version hashes prompt files, schema, vocabulary, model and sampling:
    # editing a prompt changes it, which makes this asset stale. The run extracts
    # under exactly this version (ExtractorResource.settings_for refuses others).
    prompt_version = describe_extractor(config.extraction).prompt_version

    @asset(
        key=REPORT_KNOWLEDGE,
        deps=[ECG_SIGNALS],
        partitions_def=source_partitions(config),
        code_version=prompt_version,
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        pool=LLM_POOL,
        kinds={"parquet", "duckdb", "vllm"},
        check_specs=checks.KNOWLEDGE_CHECKS,
    )
    def report_knowledge(
        context: AssetExecutionContext,
        storage: StorageResource,
        extractor: ExtractorResource,
        audit: AuditDatabaseResource,
        progress: ResourceParam[StageProgress],
    ) -> MaterializeResult:
        """Cardiac entities (present / absent / uncertain, leads, evidence) of every report
        of the source, under the current prompt version; earlier versions stay in the
        store and in the DuckDB audit database."""
        partition = context.partition_key
        settings = extractor.settings_for(prompt_version)
        vocabulary = load_vocabulary(settings.vocabulary)
        signals = SignalStore.open(storage.layout.signal_store, sources=[partition], access="parquet")
        records = signals.metadata(["record_id", "report", "labels"]).collect()
        store = KnowledgeStore(storage.layout.knowledge_store)
        with extractor.open(settings, vocabulary) as active:
            run = extract_reports(
                records["report"].to_list(),
                active,
                store,
                vocabulary,
                reports_per_part=settings.reports_per_part,
                on_progress=progress.reporter(context, f"extract {partition}"),
                progress_interval_s=settings.progress_interval_s,
            )
        records = records.with_columns(pl.Series("report_key", run.report_keys, pl.String))
        store.write_records(partition, records.select("record_id", "report_key", "labels"))
        published = store.publish(partition, run.knowledge_version)
        quality = _quality(store, partition, records, run.knowledge_version, vocabulary, settings)
        audit_file = audit.rebuild(store) if is_local(store.root) else None
        metadata: MetadataDict = {
            "dagster/row_count": records.height,
            "knowledge_version": run.knowledge_version,
            "prompt_version": published.prompt_version,
            "model": published.model or "lexicon",
            "reports": run.inputs,
            "distinct_reports": run.unique,
            "cached": run.cached,
            "extracted": run.extracted,
            "quarantined": run.quarantined,
            "llm_requests": run.llm_requests,
            "finish_reasons": counts_markdown(run.finish_reasons, "finish_reason", "requests"),
        }
        if audit_file is not None:
            metadata["audit_database"] = MetadataValue.path(str(audit_file))
        if quality:
            metadata["quality"] = MetadataValue.md(quality_markdown(quality, top=20))
        return MaterializeResult(
            metadata=metadata,
            # A content hash: a prompt edit that yields the same entities leaves
            # everything downstream fresh (no retraining).
            data_version=DataVersion(published.content_hash),
            check_results=[
                checks.extraction_validity(run, checks_config.min_extraction_validity),
                checks.label_agreement(quality, checks_config.min_label_f1),
            ],
        )

    return [report_knowledge]


def _quality(
    store: KnowledgeStore,
    source: str,
    records: pl.DataFrame,
    version: str,
    vocabulary: Vocabulary,
    settings: ExtractionConfig,
) -> list[QualityReport]:
    """Scores against the source's SCP labels (PTB-XL), the lexicon beside the LLM."""
    with_labels = records.filter(pl.col("labels").list.eval(pl.element().struct.field("system") == "scp").list.any())
    if with_labels.is_empty():
        return []
    provenance = store.provenance(version)
    reports = [
        evaluate(
            _label(provenance.extractor, provenance.model), version, with_labels, store.entities(version), vocabulary
        )
    ]
    if settings.compare_with_lexicon and provenance.extractor != "lexicon":
        lexicon = LexiconExtractor(vocabulary, settings.max_mentions)
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
        # (writes through kmerl.atomic, which takes any store path; typed Path on the extraction side)
        report.write(store.root / "quality", f"{source}-{report.knowledge_version}")  # type: ignore[arg-type]
    return reports


def _label(extractor: str, model: str | None) -> str:
    return "lexicon" if extractor == "lexicon" else f"llm: {model}"
