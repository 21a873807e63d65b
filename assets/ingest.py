"""Stage 1: raw WFDB archives -> the versioned Parquet signal store, one partition per source."""


import numpy as np
import pyarrow.parquet as pq
from dagster import (
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
)

from kmerl.ingest import ingest_source
from kmerl.plots import ecg_figure, to_png
from kmerl.store import SignalStore, SourceLayout
from pipeline.config import CONFIG
from pipeline.metadata import counts_markdown, png_markdown, table_schema
from pipeline.resources import StorageResource

source_partitions = StaticPartitionsDefinition([source.name for source in CONFIG.sources])


@asset(
    partitions_def=source_partitions,
    code_version=CONFIG.ingest.code_version,
    group_name="ingest",
    kinds={"parquet", "wfdb"},
)
def ecg_signals(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    """Every ECG of the source, preprocessed to a fixed 12-lead shape, with its report
    and labels; rejected records in the quarantine table with their reason."""
    source = CONFIG.source(context.partition_key)
    manifest = ingest_source(
        source,
        storage.signal_store,
        CONFIG.ingest,
        on_progress=lambda progress: context.log.info(f"{source.name}: {progress}"),
    )
    layout = SourceLayout(storage.signal_store, source.name)
    metadata: dict[str, object] = {
        "dagster/row_count": manifest.ingested,
        "records_in": manifest.records_in,
        "quarantined": manifest.quarantined,
        "quarantine_reasons": counts_markdown(manifest.quarantine_reasons, "reason"),
        "store_version": manifest.version,
        "manifest": MetadataValue.path(str(layout.manifest_file(manifest.version))),
    }
    if manifest.ingested:
        first = next(s for s in manifest.shards if s.ingested)
        metadata["dagster/column_schema"] = table_schema(pq.read_schema(layout.signal_file(first.key)))
        metadata["sample_ecg"] = _sample_plot(storage, source.name, manifest.version, CONFIG.ingest.preprocess.target_fs)
    return MaterializeResult(metadata=metadata, data_version=DataVersion(manifest.version))


def _sample_plot(storage: StorageResource, source: str, version: str, fs: int) -> MetadataValue:
    store = SignalStore.open(storage.signal_store, sources=[source], versions={source: version}, access="parquet")
    position = int(np.argmax(store.lead_masks.sum(axis=1)))  # a record with the most leads present
    item = store[position]
    return png_markdown(to_png(ecg_figure(item.signal, item.lead_mask, fs, item.record_id)), item.record_id)
