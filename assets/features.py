"""Stage 3: signals + extracted knowledge + text embeddings -> the training-ready feature store."""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DataVersion,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.extraction import REPORT_KNOWLEDGE
from assets.ingest import ECG_SIGNALS
from kmerl.config import KmerlConfig
from kmerl.extraction import KnowledgeStore, describe_extractor, load_vocabulary
from kmerl.features import FeatureManifest, FeatureStore, build_feature_store
from kmerl.signals import SignalStore
from kmerl.text_encoder import MiniLmEncoder
from pipeline.automation import ON_UPSTREAM_OR_CODE_CHANGE
from pipeline.metadata import counts_markdown
from pipeline.partitions import PIPELINE_GROUP
from pipeline.resources import ExtractorResource, StorageResource

FEATURE_STORE = AssetKey("feature_store")


def definitions(config: KmerlConfig) -> Definitions:
    @asset(
        key=FEATURE_STORE,
        deps=[ECG_SIGNALS, REPORT_KNOWLEDGE],
        code_version=config.model.features.code_version,
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        kinds={"parquet", "pytorch"},
        check_specs=[
            AssetCheckSpec("split_leakage", asset=FEATURE_STORE, description="no patient has rows in two splits")
        ],
    )
    def feature_store(
        context: AssetExecutionContext, storage: StorageResource, extractor: ExtractorResource
    ) -> MaterializeResult:
        """Training rows per split: the 12-lead signal and its lead mask, the report and its
        frozen MiniLM embedding, and the multi-hot vector of the entities the extracted
        knowledge asserts; plus the entity names and their embeddings."""
        signals = SignalStore.open(storage.signal_store, sources=config.partition_keys, access="parquet")
        knowledge = KnowledgeStore(storage.knowledge_store)
        versions = _knowledge_versions(context, config, extractor)
        record_entities = pl.concat(
            [
                knowledge.records([partition])
                .join(knowledge.entities(version), on="report_key")
                .select("record_id", "entity_id", "status")
                for partition, version in versions.items()
            ]
        )
        manifest = build_feature_store(
            signals,
            record_entities,
            load_vocabulary(extractor.config.vocabulary).frame(),
            storage.feature_store,
            MiniLmEncoder(),
            config.model.features,
            on_progress=lambda progress: context.log.info(f"feature store: {progress}"),
        )
        store = FeatureStore.open(storage.feature_store, manifest.version)
        return MaterializeResult(
            metadata=_metadata(manifest, versions),
            data_version=DataVersion(manifest.version),
            check_results=[_leakage_check(store, signals)],
        )

    return Definitions(assets=[feature_store])


def _knowledge_versions(
    context: AssetExecutionContext, config: KmerlConfig, extractor: ExtractorResource
) -> dict[str, str]:
    """The knowledge version each partition's latest report_knowledge materialization
    wrote (what the graph says is upstream), or the configured one if none did."""
    configured = describe_extractor(extractor.config).knowledge_version
    versions = {}
    for partition in config.partition_keys:
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=REPORT_KNOWLEDGE, asset_partitions=[partition]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata if records else {}  # type: ignore[union-attr]
        versions[partition] = metadata["knowledge_version"].value if "knowledge_version" in metadata else configured
    return versions


def _metadata(manifest: FeatureManifest, versions: dict[str, str]) -> dict[str, object]:
    return {
        "dagster/row_count": sum(manifest.rows.values()),
        "rows_per_split": counts_markdown(dict(manifest.rows), "split", "rows"),
        "records_in": manifest.records_in,
        "quarantined": manifest.quarantined,
        "entities": manifest.n_entities,
        "mentions": MetadataValue.json(manifest.mentions.model_dump()),
        "knowledge_versions": MetadataValue.json(versions),
        "feature_store_version": manifest.version,
    }


def _leakage_check(store: FeatureStore, signals: SignalStore) -> AssetCheckResult:
    """Patients are read from the signal store; records without one count as their own patient."""
    rows = pl.concat([store.split(name).metadata(["record_id", "split"]) for name in ("train", "val", "test")])
    patients = signals.metadata(["record_id", "source", "patient_id"]).collect()
    joined = rows.join(patients, on="record_id", how="left").filter(pl.col("patient_id").is_not_null())
    leaking = (
        joined.group_by("source", "patient_id")
        .agg(pl.col("split").n_unique().alias("splits"))
        .filter(pl.col("splits") > 1)
    )
    return AssetCheckResult(
        check_name="split_leakage",
        passed=leaking.is_empty(),
        metadata={
            "patients_checked": joined.select("source", "patient_id").n_unique(),
            "patients_in_several_splits": leaking.height,
            "examples": MetadataValue.json(leaking.head(10).to_dicts()),
        },
    )
