"""Stage 1: raw WFDB archives -> the versioned Parquet signal store, one partition per source."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    DataVersion,
    DataVersionsByPartition,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    asset,
    observable_source_asset,
    sensor,
)

from kmerl.config import KmerlConfig
from kmerl.ingest import ingest_source
from kmerl.plots import ecg_figure, to_png
from kmerl.signals import SignalManifest, SignalStore, SourceLayout
from kmerl.signals.schema import signal_schema
from kmerl.sources.fingerprint import fingerprint_archive
from pipeline.automation import ON_UPSTREAM_OR_CODE_CHANGE
from pipeline.metadata import DATA_VERSION_TAG, counts_markdown, png_markdown, table_schema
from pipeline.partitions import PIPELINE_GROUP, source_partitions
from pipeline.resources import StorageResource

RAW_ARCHIVES = AssetKey("raw_ecg_archives")
ECG_SIGNALS = AssetKey("ecg_signals")


def definitions(config: KmerlConfig) -> Definitions:
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
        check_specs=[
            AssetCheckSpec(
                "record_accounting", asset=ECG_SIGNALS, description="records listed == ingested + quarantined"
            ),
            AssetCheckSpec("schema", asset=ECG_SIGNALS, description="every shard has the signal store schema"),
        ],
    )
    def ecg_signals(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
        """Every ECG of the source, preprocessed to a fixed 12-lead shape, with its report
        and labels; rejected records in the quarantine table with their reason."""
        partition = context.partition_key
        source = config.source_of(partition)
        manifest = ingest_source(
            source,
            storage.signal_store,
            config.ingest,
            on_progress=lambda progress: context.log.info(f"{partition}: {progress}"),
            partition=partition,
        )
        layout = SourceLayout(storage.signal_store, partition)
        metadata: dict[str, object] = {
            "dagster/row_count": manifest.ingested,
            "records_in": manifest.records_in,
            "quarantined": manifest.quarantined,
            "quarantine_reasons": counts_markdown(manifest.quarantine_reasons, "reason"),
            "store_version": manifest.version,
            "manifest": MetadataValue.path(str(layout.manifest_file(manifest.version))),
            "dagster/column_schema": table_schema(_expected_schema(config)),
        }
        if manifest.ingested:
            metadata["sample_ecg"] = _sample_plot(storage, manifest, config.ingest.preprocess.target_fs)
        return MaterializeResult(
            metadata=metadata,
            data_version=DataVersion(manifest.version),
            check_results=[
                _accounting_check(source.count_partition(partition, config.ingest.preprocess.target_fs), manifest),
                _schema_check(layout, manifest, config),
            ],
        )

    @sensor(
        name="raw_archive_sensor",
        minimum_interval_seconds=config.orchestration.raw_archive_poll_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        asset_selection=[RAW_ARCHIVES],
    )
    def raw_archive_sensor(context: SensorEvaluationContext) -> SensorResult:
        """Records a new data version of an archive when its files change; the
        automation condition of ecg_signals then re-ingests that partition."""
        known = dict(line.split("=", 1) for line in (context.cursor or "").splitlines() if "=" in line)
        observations = []
        for source in config.sources:
            fingerprint = fingerprint_archive(source)
            if known.get(source.name) == fingerprint.version:
                continue
            known[source.name] = fingerprint.version
            observations += [
                AssetObservation(
                    asset_key=RAW_ARCHIVES,
                    partition=partition,
                    tags={DATA_VERSION_TAG: fingerprint.version},
                    metadata={"files": fingerprint.files, "bytes": fingerprint.bytes},
                )
                for partition in source.partition_keys()
            ]
        cursor = "\n".join(f"{name}={version}" for name, version in sorted(known.items()))
        return SensorResult(asset_events=observations, cursor=cursor)

    return Definitions(assets=[raw_ecg_archives, ecg_signals], sensors=[raw_archive_sensor])


def _expected_schema(config: KmerlConfig) -> pa.Schema:
    preprocess = config.ingest.preprocess
    return signal_schema(preprocess.dtype, preprocess.target_samples, preprocess.target_fs)


def _accounting_check(listed: int, manifest: SignalManifest) -> AssetCheckResult:
    accounted = manifest.ingested + manifest.quarantined
    return AssetCheckResult(
        check_name="record_accounting",
        passed=listed == manifest.records_in == accounted,
        metadata={"listed_by_source": listed, "ingested": manifest.ingested, "quarantined": manifest.quarantined},
    )


def _schema_check(layout: SourceLayout, manifest: SignalManifest, config: KmerlConfig) -> AssetCheckResult:
    expected = _expected_schema(config)
    mismatched = [s.key for s in manifest.shards if not pq.read_schema(layout.signal_file(s.key)).equals(expected)]
    return AssetCheckResult(
        check_name="schema",
        passed=not mismatched,
        severity=AssetCheckSeverity.ERROR,
        metadata={"shards": len(manifest.shards), "mismatched_shards": MetadataValue.json(mismatched)},
    )


def _sample_plot(storage: StorageResource, manifest: SignalManifest, fs: int) -> MetadataValue:
    store = SignalStore.open(
        storage.signal_store, sources=[manifest.source], versions={manifest.source: manifest.version}, access="parquet"
    )
    position = int(np.argmax(store.lead_masks.sum(axis=1)))  # a record with the most leads present
    item = store[position]
    return png_markdown(to_png(ecg_figure(item.signal, item.lead_mask, fs, item.record_id)), item.record_id)
