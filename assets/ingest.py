"""Stage 1: raw WFDB archives -> the versioned Parquet signal store, one partition per source."""

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    DataVersionsByPartition,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    SourceAsset,
    asset,
    observable_source_asset,
)

from assets import checks
from assets.shared.automation import ON_UPSTREAM_OR_CODE_CHANGE
from assets.shared.keys import ECG_SIGNALS, RAW_ARCHIVES
from assets.shared.metadata import MetadataDict, counts_markdown, png_markdown, table_schema
from assets.shared.partitions import PIPELINE_GROUP, source_partitions
from assets.shared.resources import StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.ingest import ingest_source
from kmerl.plots import ecg_figure, to_png
from kmerl.signals import SignalManifest, SignalStore, SourceLayout
from kmerl.signals.schema import signal_schema
from kmerl.sources.base import SourceRefused
from kmerl.sources.fingerprint import fingerprint_archive


def build_assets(config: KmerlConfig) -> list[AssetsDefinition | SourceAsset]:
    partitions = source_partitions(config)

    @observable_source_asset(key=RAW_ARCHIVES, partitions_def=partitions, group_name=PIPELINE_GROUP)
    def raw_ecg_archives() -> DataVersionsByPartition:
        """The archives as they sit on disk; their data version hashes the file manifest."""
        versions = {}
        for source in config.sources:
            version = DataVersion(fingerprint_archive(source).version)
            versions.update(dict.fromkeys(source.partition_keys(), version))
        return DataVersionsByPartition(versions)

    @asset(
        key=ECG_SIGNALS,
        deps=[RAW_ARCHIVES],
        partitions_def=partitions,
        code_version=config.ingest.code_version,
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        kinds={"parquet", "wfdb"},
        check_specs=checks.SIGNAL_CHECKS,
    )
    def ecg_signals(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Every ECG of the source, preprocessed to a fixed 12-lead shape, with its report
        and labels; rejected records in the quarantine table with their reason."""
        partition = context.partition_key
        source = config.source_of(partition)
        root = storage.layout.signal_store
        try:
            manifest = ingest_source(
                source,
                root,
                config.ingest,
                on_progress=progress.reporter(context, f"ingest {partition}"),
                partition=partition,
            )
        except SourceRefused as error:
            raise Failure(description=str(error)) from error
        layout = SourceLayout(root, partition)
        metadata: MetadataDict = {
            "dagster/row_count": manifest.ingested,
            "records_in": manifest.records_in,
            "quarantined": manifest.quarantined,
            "quarantine_reasons": counts_markdown(manifest.quarantine_reasons, "reason"),
            "store_version": manifest.version,
            "manifest": MetadataValue.path(str(layout.versions.manifest_file(manifest.version))),
            "dagster/column_schema": table_schema(_expected_schema(config)),
        }
        if manifest.ingested:
            metadata["sample_ecg"] = _sample_plot(layout, manifest, config.ingest.preprocess.target_fs)
        return MaterializeResult(
            metadata=metadata,
            data_version=DataVersion(manifest.version),
            check_results=[
                checks.record_accounting(
                    source.count_partition(partition, config.ingest.preprocess.target_fs), manifest
                ),
                checks.signal_schema(layout, manifest, _expected_schema(config)),
            ],
        )

    return [raw_ecg_archives, ecg_signals]


def _expected_schema(config: KmerlConfig) -> pa.Schema:
    preprocess = config.ingest.preprocess
    return signal_schema(preprocess.dtype, preprocess.target_samples, preprocess.target_fs)


def _sample_plot(layout: SourceLayout, manifest: SignalManifest, fs: int) -> MetadataValue:
    store = SignalStore.open(
        layout.root, sources=[manifest.source], versions={manifest.source: manifest.version}, access="parquet"
    )
    position = int(np.argmax(store.lead_masks.sum(axis=1)))  # a record with the most leads present
    item = store[position]
    return png_markdown(to_png(ecg_figure(item.signal, item.lead_mask, fs, item.record_id)), item.record_id)
