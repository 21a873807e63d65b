"""Stage 2: report text -> structured cardiac knowledge, one partition per source."""

import io

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    DataVersion,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.ingest import ECG_SIGNALS
from kmerl.config import KmerlConfig
from kmerl.extraction import (
    ExtractionRun,
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
from kmerl.hashing import bytes_hash
from kmerl.signals import SignalStore
from kmerl.storage import is_local
from pipeline.automation import ON_UPSTREAM_OR_CODE_CHANGE
from pipeline.executors import LLM_POOL
from pipeline.metadata import counts_markdown
from pipeline.partitions import PIPELINE_GROUP, source_partitions
from pipeline.resources import AuditDatabaseResource, ExtractorResource, StorageResource

REPORT_KNOWLEDGE = AssetKey("report_knowledge")


def definitions(config: KmerlConfig) -> Definitions:
    checks = config.orchestration.checks

    @asset(
        key=REPORT_KNOWLEDGE,
        deps=[ECG_SIGNALS],
        partitions_def=source_partitions(config),
        # The prompt version hashes prompt files, schema, vocabulary, model and
        # sampling: editing a prompt changes it, which makes this asset stale.
        code_version=describe_extractor(config.extraction).prompt_version,
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        pool=LLM_POOL,
        kinds={"parquet", "duckdb", "vllm"},
        check_specs=[
            AssetCheckSpec(
                "extraction_validity", asset=REPORT_KNOWLEDGE, description="share of distinct reports not quarantined"
            ),
            AssetCheckSpec(
                "label_agreement", asset=REPORT_KNOWLEDGE, description="micro F1 against cardiologist labels"
            ),
        ],
    )
    def report_knowledge(
        context: AssetExecutionContext,
        storage: StorageResource,
        extractor: ExtractorResource,
        audit: AuditDatabaseResource,
    ) -> MaterializeResult:
        """Cardiac entities (present / absent / uncertain, leads, evidence) of every report
        of the source, under the current prompt version; earlier versions stay in the
        store and in the DuckDB audit database."""
        partition = context.partition_key
        vocabulary = load_vocabulary(extractor.config.vocabulary)
        signals = SignalStore.open(storage.signal_store, sources=[partition], access="parquet")
        records = signals.metadata(["record_id", "report", "labels"]).collect()
        store = KnowledgeStore(storage.knowledge_store)
        with extractor.open(vocabulary) as active:
            run = extract_reports(
                records["report"].to_list(),
                active,
                store,
                vocabulary,
                reports_per_part=extractor.config.reports_per_part,
                on_progress=lambda progress: context.log.info(f"{partition}: {progress}"),
                progress_interval_s=extractor.config.progress_interval_s,
            )
        records = records.with_columns(pl.Series("report_key", run.report_keys, pl.String))
        store.write_records(partition, records.select("record_id", "report_key", "labels"))
        quality = _quality(store, partition, records, run.knowledge_version, vocabulary, extractor)
        audit_file = audit.rebuild(store) if is_local(store.root) else None
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
        }
        if audit_file is not None:
            metadata["audit_database"] = MetadataValue.path(str(audit_file))
        if quality:
            metadata["quality"] = MetadataValue.md(quality_markdown(quality, top=20))
        return MaterializeResult(
            metadata=metadata,
            # A content hash: a prompt edit that yields the same entities leaves
            # everything downstream fresh (no retraining).
            data_version=DataVersion(_content_version(entities, store, run)),
            check_results=[
                _validity_check(run, checks.min_extraction_validity),
                _agreement_check(quality, checks.min_label_f1),
            ],
        )

    return Definitions(assets=[report_knowledge])


def _content_version(entities: pl.DataFrame, store: KnowledgeStore, run: ExtractionRun) -> str:
    buffer = io.BytesIO()
    entities.sort("report_key", "entity_id").write_ipc(buffer, compression="uncompressed")
    quarantined = store.table("quarantine", run.knowledge_version).get_column("report_key")
    return bytes_hash(buffer.getvalue() + "".join(sorted(set(run.report_keys) & set(quarantined))).encode())


def _validity_check(run: ExtractionRun, minimum: float) -> AssetCheckResult:
    valid = 1 - run.quarantined / run.unique if run.unique else 1.0
    return AssetCheckResult(
        check_name="extraction_validity",
        passed=valid >= minimum,
        metadata={"valid_share": valid, "minimum": minimum, "quarantined": run.quarantined, "distinct": run.unique},
    )


def _agreement_check(quality: list[QualityReport], minimum: float) -> AssetCheckResult:
    """A warning, not an error: a weak extractor is worth knowing about, not worth
    blocking the pipeline for (the embedded 135M model is weak by design)."""
    if not quality:
        return AssetCheckResult(
            check_name="label_agreement", passed=True, metadata={"note": "no cardiologist labels in this source"}
        )
    extracted = quality[-1]
    f1 = float(extracted.summary["micro_f1"])
    return AssetCheckResult(
        check_name="label_agreement",
        passed=f1 >= minimum,
        severity=AssetCheckSeverity.WARN,
        metadata={"extractor": extracted.name, "micro_f1": f1, "macro_f1": float(extracted.summary["macro_f1"])}
        | {"minimum": minimum},
    )


def _quality(
    store: KnowledgeStore,
    source: str,
    records: pl.DataFrame,
    version: str,
    vocabulary: Vocabulary,
    extractor: ExtractorResource,
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
