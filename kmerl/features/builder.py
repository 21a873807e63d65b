"""Building the feature store: signals + report embeddings + entity targets, per split.

The signal store is read one shard at a time (metadata as a stream of batches,
signals record by record), so memory is bounded by one shard whatever the corpus
size. Each shard becomes one content-addressed chunk; a re-run reuses every chunk
whose inputs did not change, and a killed build resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from kmerl.atomic import atomic_write, remove_stale_temp_files, write_text_atomic
from kmerl.features.config import FeatureConfig
from kmerl.features.layout import FeatureLayout
from kmerl.features.manifest import ChunkEntry, FeatureManifest, MentionCounts, new_manifest
from kmerl.features.schema import QUARANTINE_SCHEMA, SPLITS, STAGE_FEATURES, entities_schema, rows_schema
from kmerl.features.targets import RecordKnowledge, TargetEntities, prepare_knowledge
from kmerl.hashing import stable_hash
from kmerl.progress import ProgressCallback, ProgressTracker
from kmerl.signals import SignalStore
from kmerl.storage import StorePath
from kmerl.text_encoder import TextEncoder

log = logging.getLogger(__name__)

_METADATA_COLUMNS = ["record_id", "source", "split", "report", "labels", "lead_mask", "content_hash"]


@dataclass(frozen=True, slots=True)
class _SignalFormat:
    fs: int
    samples: int
    dtype: str


def build_feature_store(
    signal_store: SignalStore,
    record_entities: pl.DataFrame,
    vocabulary: pl.DataFrame,
    out_dir: StorePath | str,
    text_encoder: TextEncoder,
    config: FeatureConfig | None = None,
    on_progress: ProgressCallback | None = None,
    splits: pl.DataFrame | None = None,
) -> FeatureManifest:
    """Write a new version of the feature store under ``out_dir`` and make it current.

    ``record_entities`` has one row per (record_id, entity_id, status); ``vocabulary``
    at least entity_id and name, in the order of the multi-hot vector. Open the
    signal store with ``access="parquet"`` for this sequential pass (``"mmap"`` would
    first copy every shard to an uncompressed cache). ``splits`` (record_id, split)
    assigns the splits in place of the signal store's, e.g. for a rotation of test
    folds; a record it leaves out is quarantined as having no known split.
    """
    config = config or FeatureConfig()
    layout = FeatureLayout(out_dir)
    for folder in (layout.chunks, layout.entities, layout.quarantine, *(layout.rows_dir(s) for s in SPLITS)):
        remove_stale_temp_files(folder)
    signal_format = _signal_format(signal_store)
    targets = TargetEntities.from_frame(vocabulary)
    knowledge = prepare_knowledge(record_entities, targets, signal_store.index.get_column("record_id"))
    entities_key = _write_entities(layout, targets, text_encoder)
    mentions_key = _write_mention_quarantine(layout, knowledge)
    chunk_identity = (config.code_version, text_encoder.name, targets.key, asdict(signal_format))

    tracker = ProgressTracker(len(signal_store), on_progress, config.progress_interval_s)
    chunks: list[ChunkEntry] = []
    reused = 0
    for positions, metadata in _store_shards(signal_store):
        if splits is not None:
            metadata = metadata.drop("split").join(splits, on="record_id", how="left", maintain_order="left")
        rows = metadata.join(knowledge.positives, on="record_id", how="left", maintain_order="left")
        key = stable_hash(chunk_identity, rows.drop("lead_mask").rows())
        if layout.chunk_file(key).exists():
            chunks.append(ChunkEntry.model_validate_json(layout.chunk_file(key).read_text()))
            reused += 1
        else:
            chunks.append(
                _write_chunk(layout, key, positions, rows, signal_store, text_encoder, targets, signal_format, config)
            )
        tracker.advance(len(positions))
    tracker.finish()

    mention_reasons = Counter(knowledge.quarantine.get_column("reason").to_list())
    manifest = new_manifest(
        code_version=config.code_version,
        text_encoder=text_encoder.name,
        text_dim=text_encoder.dim,
        fs=signal_format.fs,
        samples=signal_format.samples,
        signal_dtype=signal_format.dtype,
        signal_store_versions={m.source: m.version for m in signal_store.manifests},
        vocabulary_key=targets.key,
        entities_key=entities_key,
        n_entities=len(targets),
        mentions=MentionCounts(
            mentions_in=knowledge.mentions_in,
            positive=knowledge.mentions_in - knowledge.not_positive - knowledge.quarantine.height,
            not_positive=knowledge.not_positive,
            quarantined=knowledge.quarantine.height,
            quarantine_reasons=dict(mention_reasons.most_common()),
        ),
        mentions_quarantine_key=mentions_key,
        chunks=tuple(chunks),
    )
    layout.versions.publish(manifest)
    log.info(
        "feature store version %s: %d records in, rows %s, %d quarantined; %d of %d chunks reused",
        manifest.version, manifest.records_in, manifest.rows, manifest.quarantined, reused, len(chunks),
    )  # fmt: skip
    return manifest


def _signal_format(store: SignalStore) -> _SignalFormat:
    formats = {
        m.source: _SignalFormat(m.preprocess.target_fs, m.preprocess.target_samples, m.preprocess.dtype)
        for m in store.manifests
    }
    if not formats:
        raise ValueError("the signal store has no sources")
    if len(set(formats.values())) > 1:
        raise ValueError(f"sources disagree on sampling rate, length or dtype; re-ingest them alike: {formats}")
    return next(iter(formats.values()))


def _store_shards(store: SignalStore) -> Iterator[tuple[np.ndarray, pl.DataFrame]]:
    """(positions, metadata) of each signal-store shard, in store order, streamed."""
    shard_of = store.index.get_column("shard").to_numpy()
    boundaries = np.flatnonzero(np.diff(shard_of)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(shard_of)]])
    pending: list[pl.DataFrame] = []
    buffered = 0
    shard = 0
    for batch in store.metadata(_METADATA_COLUMNS).collect_batches():
        pending.append(batch)
        buffered += batch.height
        while shard < len(starts) and buffered >= ends[shard] - starts[shard]:
            frame = pl.concat(pending)
            size = int(ends[shard] - starts[shard])
            positions = np.arange(starts[shard], ends[shard])
            head = frame.head(size)
            if head.get_column("record_id").to_list() != [store.record_ids[p] for p in positions]:
                raise RuntimeError("signal store metadata came back out of store order")
            yield positions, head
            pending, buffered, shard = [frame.slice(size)], buffered - size, shard + 1


def _write_chunk(
    layout: FeatureLayout,
    key: str,
    positions: np.ndarray,
    rows: pl.DataFrame,
    store: SignalStore,
    text_encoder: TextEncoder,
    targets: TargetEntities,
    signal_format: _SignalFormat,
    config: FeatureConfig,
) -> ChunkEntry:
    """Rows files first, the chunk entry last: the entry marks the chunk complete."""
    rows = rows.with_columns(_record_problem().alias("problem"))
    quarantine = rows.filter(pl.col("problem").is_not_null()).select(
        "record_id", "source", pl.lit(STAGE_FEATURES).alias("stage"), pl.col("problem").alias("reason"),
        pl.format("{}: {}", "record_id", pl.col("problem").replace(_PROBLEM_TEXT)).alias("detail"),
    )  # fmt: skip
    keep = rows.get_column("problem").is_null().to_numpy()
    rows, positions = rows.filter(pl.Series(keep)), positions[keep]
    reports = rows.get_column("report").fill_null("").str.strip_chars()
    has_report = (reports.str.len_chars() > 0).to_numpy()
    embeddings = _embed_unique(reports.to_list(), has_report, text_encoder)
    entities = np.zeros((rows.height, len(targets)), dtype=np.uint8)
    for row, indices in enumerate(rows.get_column("entity_indices").to_list()):
        entities[row, indices or []] = 1
    signals = np.stack([store.signal(int(p)) for p in positions]) if len(positions) else np.empty((0, 12, 0))

    schema = rows_schema(signal_format.dtype, signal_format.samples, signal_format.fs, text_encoder.dim, len(targets))
    written: dict[str, int] = {}
    split_of = rows.get_column("split").to_numpy()
    for split in SPLITS:
        selected = np.flatnonzero(split_of == split)
        if not len(selected):
            continue
        table = _rows_table(
            schema,
            rows[selected],
            reports.to_numpy()[selected],
            has_report[selected],
            embeddings[selected],
            entities[selected],
            signals[selected],
        )
        with atomic_write(layout.rows_file(split, key)) as handle:
            pq.write_table(
                table,
                handle,
                compression="zstd",
                row_group_size=config.row_group_rows,
                use_byte_stream_split=["signal", "report_embedding"],
                write_statistics=["record_id", "source"],
            )
        written[split] = len(selected)
    _write_quarantine(layout.quarantine_file(key), quarantine)
    entry = ChunkEntry(
        key=key,
        records_in=len(keep),
        rows=written,
        quarantined=quarantine.height,
        quarantine_reasons=dict(Counter(quarantine.get_column("reason").to_list()).most_common()),
    )
    write_text_atomic(layout.chunk_file(key), entry.model_dump_json(indent=2))
    return entry


_PROBLEM_TEXT = {
    "unknown_split": f"the record's split is not one of {', '.join(SPLITS)}",
    "no_leads": "no lead carries signal",
}


def _record_problem() -> pl.Expr:
    """Why a record cannot become a training row (null: it can)."""
    return (
        pl.when(pl.col("split").is_null() | ~pl.col("split").is_in(SPLITS))
        .then(pl.lit("unknown_split"))
        .when(~pl.col("lead_mask").arr.any())
        .then(pl.lit("no_leads"))
    )


def _embed_unique(reports: list[str], has_report: np.ndarray, text_encoder: TextEncoder) -> np.ndarray:
    """Embed each distinct report once (real corpora repeat reports a lot); no report -> zeros."""
    distinct = sorted({text for text, present in zip(reports, has_report, strict=True) if present})
    encoded = text_encoder.encode(distinct)
    lookup = {text: i for i, text in enumerate(distinct)}
    embeddings = np.zeros((len(reports), text_encoder.dim), dtype=np.float32)
    for row, (text, present) in enumerate(zip(reports, has_report, strict=True)):
        if present:
            embeddings[row] = encoded[lookup[text]]
    return embeddings


def _rows_table(
    schema: pa.Schema,
    rows: pl.DataFrame,
    reports: np.ndarray,
    has_report: np.ndarray,
    embeddings: np.ndarray,
    entities: np.ndarray,
    signals: np.ndarray,
) -> pa.Table:
    columns = {
        "record_id": pa.array(rows.get_column("record_id").to_list(), pa.string()),
        "source": pa.array(rows.get_column("source").to_list(), pa.string()),
        "split": pa.array(rows.get_column("split").to_list(), pa.string()),
        "report": pa.array([text or None for text in reports.tolist()], pa.string()),
        "labels": rows.get_column("labels").to_arrow().cast(schema.field("labels").type),
        "has_report": pa.array(has_report, pa.bool_()),
        "lead_mask": _fixed(np.stack(list(rows.get_column("lead_mask").to_numpy())).astype(bool), schema, "lead_mask"),
        "report_embedding": _fixed(embeddings, schema, "report_embedding"),
        "entities": _fixed(entities, schema, "entities"),
    }
    tensor_type = schema.field("signal").type
    storage = pa.FixedSizeListArray.from_arrays(
        pa.array(signals.astype(tensor_type.value_type.to_pandas_dtype(), copy=False).reshape(-1)),
        tensor_type.storage_type.list_size,
    )
    columns["signal"] = pa.ExtensionArray.from_storage(tensor_type, storage)
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


def _fixed(values: np.ndarray, schema: pa.Schema, name: str) -> pa.FixedSizeListArray:
    field_type = schema.field(name).type
    flat = pa.array(values.reshape(-1), field_type.value_type)
    return pa.FixedSizeListArray.from_arrays(flat, field_type.list_size)


def _write_entities(layout: FeatureLayout, targets: TargetEntities, text_encoder: TextEncoder) -> str:
    """Embed the entity names once per (vocabulary, text encoder)."""
    key = stable_hash(targets.key, text_encoder.name)
    path = layout.entities_file(key)
    if not path.exists():
        schema = entities_schema(text_encoder.dim)
        embeddings = text_encoder.encode(list(targets.names))
        table = pa.Table.from_arrays(
            [
                pa.array(targets.entity_ids, pa.string()),
                pa.array(targets.names, pa.string()),
                _fixed(embeddings, schema, "embedding"),
            ],
            schema=schema,
        )
        with atomic_write(path) as handle:
            pq.write_table(table, handle, compression="zstd")
    return key


def _write_mention_quarantine(layout: FeatureLayout, knowledge: RecordKnowledge) -> str:
    key = knowledge.key
    if not layout.quarantine_file(key).exists():
        _write_quarantine(layout.quarantine_file(key), knowledge.quarantine)
    return key


def _write_quarantine(path: StorePath, rows: pl.DataFrame) -> None:
    table = pa.Table.from_pylist(rows.to_dicts(), schema=QUARANTINE_SCHEMA)
    with atomic_write(path) as handle:
        pq.write_table(table, handle, compression="zstd")
