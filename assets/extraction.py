"""Stage 2: report text -> structured cardiac knowledge: one partition per source, and
report corpora (reports without signals) beside the pipeline, one partition each."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetRecordsFilter,
    AssetsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    SourceAsset,
    asset,
    observable_source_asset,
)

from assets import checks
from assets.shared.automation import ON_CODE_CHANGE, ON_UPSTREAM_OR_CODE_CHANGE
from assets.shared.keys import CORPUS_KNOWLEDGE, ECG_SIGNALS, EXTRACTION_PROMPT, REPORT_KNOWLEDGE
from assets.shared.metadata import MetadataDict, counts_markdown, metadata_values
from assets.shared.partitions import PIPELINE_GROUP, corpus_partitions, source_partitions
from assets.shared.pools import LLM_POOL
from assets.shared.resources import ExtractorResource, StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.corpora import CorpusError, extraction_split
from kmerl.extraction import (
    ExtractionConfig,
    KnowledgeStore,
    describe_extractor,
    extract_reports,
    load_vocabulary,
    quality_markdown,
)
from kmerl.extraction.assessment import Assessment, assess, differences_markdown
from kmerl.extraction.corpus import extract_corpus
from kmerl.extraction.gaps import gaps_markdown
from kmerl.signals import SignalStore


def build_assets(config: KmerlConfig) -> list[AssetsDefinition | SourceAsset]:
    checks_config = config.orchestration.checks
    # The prompt version hashes prompt files, schema, vocabulary, model, sampling and the
    # in-process engine's settings: editing a prompt changes it, which makes this asset
    # stale. The run extracts under exactly this version (ExtractorResource.settings_for
    # refuses others).
    prompt_version = describe_extractor(config.extraction).prompt_version

    @observable_source_asset(key=EXTRACTION_PROMPT, group_name=PIPELINE_GROUP)
    def extraction_prompt() -> DataVersion:
        """The prompt files, schema, vocabulary, model, sampling and engine settings, observed
        as the prompt version they hash to. The `prompt_sensor` observes it; a new version makes
        `report_knowledge` re-extract without reloading the code location."""
        return DataVersion(describe_extractor(config.extraction).prompt_version)

    @asset(
        key=REPORT_KNOWLEDGE,
        deps=[ECG_SIGNALS, EXTRACTION_PROMPT],
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
        progress: ResourceParam[StageProgress],
    ) -> MaterializeResult:
        """Cardiac entities (present / absent / uncertain, leads, evidence) of every report
        of the source, under the current prompt version; earlier versions stay in the
        store, all of them queryable with `kmerl audit`."""
        partition = context.partition_key
        settings = extractor.settings_for(prompt_version)
        vocabulary = load_vocabulary(settings.vocabulary)
        signals = SignalStore.open(storage.layout.signal_store, sources=[partition], access="parquet")
        records = signals.metadata(["record_id", "report", "labels", "fold"]).collect()
        store = KnowledgeStore(storage.layout.knowledge_store)
        with extractor.open(settings, vocabulary) as active:
            run = extract_reports(
                records["report"].to_list(),
                active,
                store,
                vocabulary,
                on_progress=progress.reporter(context, f"extract {partition}"),
                progress_interval_s=settings.progress_interval_s,
            )
        records = records.with_columns(
            pl.Series("report_key", run.report_keys, pl.String),
            split=extraction_split(pl.col("fold").cast(pl.Int64)),
        )
        store.write_records(partition, records)
        published = store.publish(partition, run.knowledge_version)
        assessment = assess(
            store, records, run.knowledge_version, vocabulary,
            name=_label(store, run.knowledge_version),
            compare_with_lexicon=settings.compare_with_lexicon,
            max_mentions=settings.max_mentions,
        )  # fmt: skip
        for report in assessment.reports:
            report.write(store.root / "quality", f"{partition}-{report.knowledge_version}-{report.split}")
        quality = assessment.reports
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
        metadata |= _assessment_metadata(assessment)
        metadata["sources"] = _sources_summary(context, config.partition_keys, metadata)
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

    @asset(
        key=CORPUS_KNOWLEDGE,
        partitions_def=corpus_partitions(config),
        code_version=prompt_version,
        automation_condition=ON_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        pool=LLM_POOL,
        kinds={"parquet", "duckdb", "vllm"},
        check_specs=checks.CORPUS_CHECKS,
    )
    def report_corpus_knowledge(
        context: AssetExecutionContext,
        storage: StorageResource,
        extractor: ExtractorResource,
        progress: ResourceParam[StageProgress],
    ) -> MaterializeResult:
        """The knowledge in a collection of reports without signals (e.g. PTB-XL's report CSV),
        scored per split beside the lexicon, with the vocabulary gaps of its development
        records. It never touches the signal store and never feeds pretraining."""
        corpus = config.corpus(context.partition_key)
        settings = extractor.settings_for(prompt_version)
        vocabulary = load_vocabulary(settings.vocabulary)
        store = KnowledgeStore(storage.layout.knowledge_store)
        with extractor.open(settings, vocabulary) as active:
            try:
                extraction = extract_corpus(
                    corpus, active, store, vocabulary,
                    name=_label_of(settings),
                    compare_with_lexicon=settings.compare_with_lexicon,
                    on_progress=progress.reporter(context, f"extract {corpus.name}"),
                )  # fmt: skip
            except CorpusError as error:
                raise Failure(description=str(error)) from error
        run, rows = extraction.run, extraction.rows
        metadata: MetadataDict = {
            "dagster/row_count": rows.records.height,
            "knowledge_version": run.knowledge_version,
            "model": extraction.published.model or "lexicon",
            "rows": rows.rows_in,
            "rejected_rows": counts_markdown(dict(rows.rejected.group_by("reason").len().rows()), "reason", "rows"),
            "distinct_reports": run.unique,
            "cached": run.cached,
            "extracted": run.extracted,
            "quarantined": run.quarantined,
            "llm_requests": run.llm_requests,
            "finish_reasons": counts_markdown(run.finish_reasons, "finish_reason", "requests"),
        }
        metadata |= _assessment_metadata(extraction.assessment)
        return MaterializeResult(
            metadata=metadata,
            data_version=DataVersion(extraction.published.content_hash),
            check_results=[
                checks.row_accounting(extraction),
                checks.extraction_validity(run, checks_config.min_extraction_validity),
                checks.label_agreement(extraction.assessment.reports, checks_config.min_label_f1),
            ],
        )

    return [extraction_prompt, report_knowledge, report_corpus_knowledge]


# The per-partition counts the `sources` table gathers, with their column headers.
SUMMARY_COLUMNS = {
    "reports": "reports",
    "distinct_reports": "distinct",
    "extracted": "extracted",
    "cached": "cached",
    "quarantined": "quarantined",
    "llm_requests": "LLM requests",
    "micro_f1": "micro F1 (lexicon)",
}


def _sources_summary(context: AssetExecutionContext, partitions: list[str], current: MetadataDict) -> MetadataValue:
    """One row per source: this materialization's counts, and each other partition's
    latest, so the overview of any partition shows every source."""
    rows = []
    for partition in partitions:
        if partition == context.partition_key:
            values = metadata_values(current)
        else:
            records = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=REPORT_KNOWLEDGE, asset_partitions=[partition]), limit=1
            ).records
            event = records[0].asset_materialization if records else None
            values = metadata_values(event.metadata) if event else {}
        cells = [
            f"{values[key]:,}" if isinstance(values.get(key), int) else str(values.get(key, ""))
            for key in SUMMARY_COLUMNS
        ]
        rows.append(f"| {partition} | {' | '.join(cells)} |")
    header = f"| source | {' | '.join(SUMMARY_COLUMNS.values())} |\n|---|{'---:|' * (len(SUMMARY_COLUMNS) - 1)}---|"
    return MetadataValue.md("\n".join([header, *rows]))


def _assessment_metadata(assessment: Assessment) -> MetadataDict:
    metadata: MetadataDict = {}
    scores = []
    for report in assessment.reports:
        if report.knowledge_version != assessment.knowledge_version:
            continue
        score = f"{report.split}: {report.summary['micro_f1']:.3f}"
        baseline = [r for r in assessment.reports if r.split == report.split and r is not report]
        scores.append(f"{score} ({baseline[0].summary['micro_f1']:.3f})" if baseline else score)
    if scores:
        metadata["micro_f1"] = "; ".join(scores)
    if assessment.scored:
        tables = quality_markdown(assessment.reports, top=20)
        if assessment.differences:
            tables += "\n" + differences_markdown(assessment)
        metadata["quality"] = MetadataValue.md(tables)
    if not assessment.gaps.is_empty():
        metadata["vocabulary_gaps"] = MetadataValue.md(gaps_markdown(assessment.gaps))
    return metadata


def _label(store: KnowledgeStore, version: str) -> str:
    provenance = store.provenance(version)
    return "lexicon" if provenance.extractor == "lexicon" else f"llm: {provenance.model}"


def _label_of(settings: ExtractionConfig) -> str:
    provenance = describe_extractor(settings)
    return "lexicon" if provenance.extractor == "lexicon" else f"llm: {provenance.model}"
