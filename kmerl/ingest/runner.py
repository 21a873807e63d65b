"""Ingesting a whole source: listing, sharding, parallel workers, publishing a version."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from kmerl.atomic import remove_stale_temp_files
from kmerl.ingest.config import IngestConfig
from kmerl.ingest.worker import ShardTask, process_shard
from kmerl.ingest.worker_pool import bounded_map, make_executor
from kmerl.progress import ProgressCallback, ProgressTracker
from kmerl.records import Reason, RecordRef, Rejection
from kmerl.signals.layout import SourceLayout
from kmerl.signals.manifest import ShardEntry, SignalManifest, new_manifest
from kmerl.sources.base import SourceAdapter
from kmerl.storage import StorePath

log = logging.getLogger(__name__)


def ingest_source(
    source: SourceAdapter,
    store_root: StorePath | str,
    config: IngestConfig,
    on_progress: ProgressCallback | None = None,
    partition: str | None = None,
) -> SignalManifest:
    """Ingest every record of ``source`` (or of one of its slices) into a new version
    of the store named by the partition key.

    Memory is bounded by ``workers x 2`` shards in flight, whatever the size of the
    source. Finished shards are reused, so a killed run, re-run, continues where it
    stopped; the version becomes current only once every shard is written. A source
    its own check refuses (:meth:`SourceAdapter.check`) raises before anything is written.
    """
    partition = partition or source.name
    if partition not in source.partition_keys():
        raise ValueError(f"{partition!r} is not a partition of source {source.name!r}: {source.partition_keys()}")
    source.check()
    layout = SourceLayout(store_root, partition)
    if removed := remove_stale_temp_files(layout.signals) + remove_stale_temp_files(layout.quarantine):
        log.info("%s: removed %d temporary files left by an interrupted run", partition, removed)
    expected = source.count_records() // source.slices  # exact when unsliced, close for slices
    tracker = ProgressTracker(expected, on_progress, config.progress_interval_s)
    entries: dict[int, ShardEntry] = {}
    reused = 0
    with make_executor(config.workers) as executor:
        tasks = _shard_tasks(source, partition, config, layout)
        for result in bounded_map(executor, process_shard, tasks, max_in_flight=2 * config.workers):
            entries[result.index] = result.entry
            reused += result.reused
            tracker.advance(result.entry.records_in)
    tracker.finish()
    manifest = new_manifest(
        partition, source.kind, config.code_version, config.preprocess, [entries[i] for i in sorted(entries)]
    )
    layout.versions.publish(manifest)
    log.info(
        "%s: version %s: %d records in, %d ingested, %d quarantined; %d of %d shards reused",
        partition, manifest.version, manifest.records_in, manifest.ingested, manifest.quarantined,
        reused, len(entries),
    )  # fmt: skip
    return manifest


def _shard_tasks(
    source: SourceAdapter, partition: str, config: IngestConfig, layout: SourceLayout
) -> Iterator[ShardTask]:
    """Group the partition's records into shards; reject repeated record ids on the way.

    Sources list records sorted by id, so a repeat is always adjacent and
    detecting it needs no set of every id seen.
    """
    refs: list[RecordRef] = []
    rejections: list[Rejection] = []

    def task(index: int) -> ShardTask:
        return ShardTask(index, source, tuple(refs), tuple(rejections), config.preprocess, config.code_version, layout)

    previous_id: str | None = None
    index = 0
    for item in source.iter_records(config.preprocess.target_fs):
        if not source.owns(partition, item.record_id):
            continue
        if item.record_id == previous_id:
            item = Rejection(
                item.record_id, source.name, Reason.DUPLICATE_RECORD_ID, "listed more than once by the source"
            )
        previous_id = item.record_id
        if isinstance(item, Rejection):
            rejections.append(item)
        else:
            refs.append(item)
        if len(refs) + len(rejections) == config.records_per_shard:
            yield task(index)
            refs, rejections, index = [], [], index + 1
    if refs or rejections:
        yield task(index)
