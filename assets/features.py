"""Stage 3: signals + extracted knowledge + text embeddings -> the training-ready feature store."""

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
from assets.shared.keys import ECG_SIGNALS, FEATURE_STORE, REPORT_KNOWLEDGE
from assets.shared.metadata import MetadataDict, counts_markdown
from assets.shared.partitions import PIPELINE_GROUP
from assets.shared.resources import StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.extraction import KnowledgeStore, load_vocabulary
from kmerl.features import FeatureManifest, FeatureStore, build_feature_store
from kmerl.signals import SignalStore
from kmerl.text_encoder import MiniLmEncoder


def build_assets(config: KmerlConfig) -> list[AssetsDefinition]:
    @asset(
        key=FEATURE_STORE,
        deps=[ECG_SIGNALS, REPORT_KNOWLEDGE],
        code_version=config.model.features.code_version,
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        kinds={"parquet", "pytorch"},
        check_specs=checks.FEATURE_CHECKS,
    )
    def feature_store(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Training rows per split: the 12-lead signal and its lead mask, the report and its
        frozen MiniLM embedding, and the multi-hot vector of the entities the extracted
        knowledge states as present; plus the entity names and their embeddings. Every
        source is read at its current signal and knowledge versions."""
        layout = storage.layout
        signals = SignalStore.open(layout.signal_store, sources=config.partition_keys, access="parquet")
        knowledge = KnowledgeStore(layout.knowledge_store)
        versions = {partition: knowledge.current(partition).knowledge_version for partition in config.partition_keys}
        manifest = build_feature_store(
            signals,
            knowledge.record_entities(config.partition_keys),
            load_vocabulary(config.extraction.vocabulary).frame(),
            layout.feature_store,
            MiniLmEncoder(),
            config.model.features,
            on_progress=progress.reporter(context, "features"),
        )
        store = FeatureStore.open(layout.feature_store, manifest.version)
        return MaterializeResult(
            metadata=_metadata(manifest, versions),
            data_version=DataVersion(manifest.version),
            check_results=[checks.split_leakage(store, signals)],
        )

    return [feature_store]


def _metadata(manifest: FeatureManifest, knowledge_versions: dict[str, str]) -> MetadataDict:
    return {
        "dagster/row_count": sum(manifest.rows.values()),
        "rows_per_split": counts_markdown(dict(manifest.rows), "split", "rows"),
        "records_in": manifest.records_in,
        "quarantined": manifest.quarantined,
        "entities": manifest.n_entities,
        "mentions": MetadataValue.json(manifest.mentions.model_dump()),
        "knowledge_versions": MetadataValue.json(knowledge_versions),
        "feature_store_version": manifest.version,
    }
