"""The knowledge store: Parquet, one row per report and one per mention, every
version kept.

::

    <root>/versions/<knowledge version>/provenance.json
    <root>/versions/<knowledge version>/parts/<part key>/reports.parquet
                                                          mentions.parquet
                                                          quarantine.parquet
    <root>/records/<source>.parquet        record_id -> report_key (+ labels)
    <root>/vocabulary/<version>.parquet    the vocabulary each version used
    <root>/sources/<source>/versions/<version>.json   what one source's records read: its knowledge
    <root>/sources/<source>/CURRENT                    version and content hash (kmerl.versioned_store)

A part holds the outcomes of one batch of distinct reports and appears by an
atomic folder rename, so a killed run leaves no partial part; a re-run finds
the reports already extracted under the version and sends only the rest. That
set of finished report keys is the extraction cache. Once a source's records are
linked, :meth:`KnowledgeStore.publish` makes that knowledge the source's current
one: what the feature store reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from kmerl.atomic import atomic_directory, atomic_write, remove_stale_directories, write_text_atomic
from kmerl.extraction.extractor import Provenance, QuarantinedReport, ReportOutcome
from kmerl.extraction.schema import ReportKnowledge
from kmerl.extraction.vocabulary import VOCABULARY_FRAME_SCHEMA, Vocabulary
from kmerl.hashing import bytes_hash, stable_hash
from kmerl.signals.schema import LABEL_TYPE
from kmerl.storage import StorePath, read_parquet, store_path
from kmerl.versioned_store import Manifest, VersionedStore

log = logging.getLogger(__name__)

_PROVENANCE = [
    pa.field("knowledge_version", pa.string(), nullable=False),
    pa.field("extractor", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("model", pa.string()),
]
REPORTS_SCHEMA = pa.schema(
    [
        *_PROVENANCE,
        pa.field("report_key", pa.string(), nullable=False),
        pa.field("report_text", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("rhythm", pa.string()),
        pa.field("heart_axis", pa.string()),
        pa.field("mentions", pa.int32(), nullable=False),
        pa.field("flagged_mentions", pa.int32(), nullable=False),
        pa.field("notes", pa.list_(pa.string()), nullable=False),
        pa.field("attempts", pa.int16(), nullable=False),
        pa.field("raw_output", pa.string()),
        pa.field("unmatched", pa.list_(pa.string()), nullable=False),  # statements no vocabulary term covers
        pa.field("knowledge_json", pa.string(), nullable=False),
        pa.field("schema_version", pa.string(), nullable=False),
        pa.field("vocabulary_version", pa.string(), nullable=False),
    ]
)
MENTIONS_SCHEMA = pa.schema(
    [
        *_PROVENANCE,
        pa.field("report_key", pa.string(), nullable=False),
        pa.field("position", pa.int16(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("entity_name", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("leads", pa.list_(pa.string()), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
        pa.field("evidence_found", pa.bool_(), nullable=False),
        pa.field("flag", pa.string()),
        pa.field("decided_by", pa.string(), nullable=False),  # lexicon, llm, or both (the LLM confirmed the lexicon)
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        *_PROVENANCE,
        pa.field("report_key", pa.string(), nullable=False),
        pa.field("report_text", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw_output", pa.string(), nullable=False),
        pa.field("attempts", pa.int16(), nullable=False),
    ]
)
RECORDS_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("report_key", pa.string(), nullable=False),
        pa.field("labels", pa.list_(LABEL_TYPE)),
        pa.field("split", pa.string()),  # the source's own: train/val/test folds, development/validation
        pa.field("report_kind", pa.string()),  # automatic or confirmed, where the source says
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("record_id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)
TABLES = {"reports": REPORTS_SCHEMA, "mentions": MENTIONS_SCHEMA, "quarantine": QUARANTINE_SCHEMA}
VOCABULARY_SCHEMA = pl.DataFrame(schema=VOCABULARY_FRAME_SCHEMA | {"vocabulary_version": pl.String}).to_arrow().schema
# Every part has a reports table (empty when all its reports were quarantined),
# written last: a part is complete once it is there.
_PART_COMPLETE = "reports.parquet"
_STATUS_RANK = {"present": 0, "uncertain": 1, "absent": 2}
_ORDER = {"reports": ("report_key",), "mentions": ("report_key", "position"), "quarantine": ("report_key",)}


class SourceKnowledge(Manifest):
    """One source's published knowledge: the version its records read, and a hash of what they read."""

    format: int = 1
    source: str
    knowledge_version: str
    prompt_version: str
    extractor: str
    model: str | None
    records: int
    content_hash: str  # what the records read, whatever version it came from: links, entities, quarantined reports
    files_hash: str  # the bytes of the published files (sources/<source>/knowledge/<files_hash>/)


class KnowledgeStore:
    def __init__(self, root: StorePath | str) -> None:
        self.root = store_path(root)

    # -- layout --------------------------------------------------------------------------------
    def version_dir(self, version: str) -> UPath:
        return self.root / "versions" / version

    def table_files(self, table: str, version: str | None = None) -> list[UPath]:
        """The Parquet files of one table, of one version or of all of them, in complete parts."""
        parts = (self.root / "versions").glob(f"{version or '*'}/parts/*/{_PART_COMPLETE}")
        return sorted(part.parent / f"{table}.parquet" for part in parts)

    def files(self, table: str) -> list[UPath]:
        """The Parquet files of a table kept beside the versions: ``records``, ``rejected``, ``vocabulary``."""
        return sorted((self.root / table).glob("*.parquet"))

    # -- writing -------------------------------------------------------------------------------
    def register(self, provenance: Provenance, vocabulary: Vocabulary) -> None:
        """Record a version's provenance (once) and the vocabulary it uses."""
        path = self.version_dir(provenance.knowledge_version) / "provenance.json"
        if not path.exists():
            document = {"knowledge_version": provenance.knowledge_version, **provenance.model_dump(mode="json")}
            document["registered_at"] = datetime.now(UTC).isoformat()
            write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
        vocabulary_file = self.root / "vocabulary" / f"{vocabulary.version}-{vocabulary.content_hash}.parquet"
        if not vocabulary_file.exists():
            frame = vocabulary.frame().with_columns(
                pl.lit(f"{vocabulary.version}/{vocabulary.content_hash}").alias("vocabulary_version")
            )
            with atomic_write(vocabulary_file) as handle:
                frame.write_parquet(handle)

    def write_part(self, provenance: Provenance, vocabulary: Vocabulary, outcomes: Sequence[ReportOutcome]) -> str:
        """Store one batch's outcomes as a part; its key is derived from the report keys,
        so writing the same batch twice keeps one copy."""
        version = provenance.knowledge_version
        key = stable_hash("part", sorted(o.report.key for o in outcomes))
        staging = self.version_dir(version) / "staging"
        tables = _rows(provenance, vocabulary, outcomes)
        with atomic_directory(self.version_dir(version) / "parts" / key, staging, _PART_COMPLETE) as folder:
            for name, rows in tables.items():
                pq.write_table(
                    pa.Table.from_pylist(rows, schema=TABLES[name]), folder / f"{name}.parquet", compression="zstd"
                )
        return key

    def write_records(self, source: str, records: pl.DataFrame) -> UPath:
        """Which record carries which report (record_id, report_key, labels; split and
        report_kind where known), per source."""
        path = self.root / "records" / f"{source}.parquet"
        missing = [pl.lit(None, pl.String).alias(c) for c in ("split", "report_kind") if c not in records.columns]
        table = records.with_columns(*missing, source=pl.lit(source)).select(RECORDS_SCHEMA.names).to_arrow()
        with atomic_write(path) as handle:
            pq.write_table(table.cast(RECORDS_SCHEMA), handle, compression="zstd")
        return path

    def write_rejected(self, source: str, rejected: pl.DataFrame) -> UPath:
        """Input rows that could not become a record (row, record_id, reason, detail), per source."""
        path = self.root / "rejected" / f"{source}.parquet"
        table = rejected.with_columns(source=pl.lit(source)).select(REJECTED_SCHEMA.names).to_arrow()
        with atomic_write(path) as handle:
            pq.write_table(table.cast(REJECTED_SCHEMA), handle, compression="zstd")
        return path

    def publish(self, source: str, version: str) -> SourceKnowledge:
        """Make ``version`` the knowledge of ``source``'s records (as :meth:`write_records` last
        linked them): its rows for those records, sorted, written once under the hash of their
        bytes, so however the extraction was batched, killed and resumed, the same outcomes give
        the same files. The content hash ignores the version: a prompt edit that gives the same
        entities leaves everything downstream fresh."""
        links = self.records([source]).select("record_id", "report_key").sort("record_id")
        keys = links.get_column("report_key").unique().to_list()
        tables = {
            name: self.table(name, version).filter(pl.col("report_key").is_in(keys)).sort(*_ORDER[name])
            for name in TABLES
        }
        encoded = {name: _parquet_bytes(frame.to_arrow().cast(TABLES[name])) for name, frame in tables.items()}
        files = bytes_hash(_parquet_bytes(links.to_arrow()) + b"".join(encoded[name] for name in sorted(encoded)))
        entities = _strongest_status(tables["mentions"])
        content = stable_hash(links.rows(), entities.rows(), tables["quarantine"].get_column("report_key").to_list())
        folder = self.root / "sources" / source / "knowledge" / files
        if not (folder / _PART_COMPLETE).exists():
            with atomic_directory(folder, self.root / "sources" / source / "staging", _PART_COMPLETE) as staging:
                for name, data in encoded.items():
                    (staging / f"{name}.parquet").write_bytes(data)
        provenance = self.provenance(version)
        manifest = SourceKnowledge(
            version=stable_hash(source, version, content),
            created_at=datetime.now(UTC),
            source=source,
            knowledge_version=version,
            prompt_version=provenance.prompt_version,
            extractor=provenance.extractor,
            model=provenance.model,
            records=links.height,
            content_hash=content,
            files_hash=files,
        )
        self.source_versions(source).publish(manifest)
        return manifest

    def published_files(self, source: str) -> dict[str, UPath]:
        """The Parquet files of ``source``'s current knowledge, by table."""
        folder = self.root / "sources" / source / "knowledge" / self.current(source).files_hash
        return {name: folder / f"{name}.parquet" for name in TABLES}

    def source_versions(self, source: str) -> VersionedStore[SourceKnowledge]:
        return VersionedStore(self.root / "sources" / source, SourceKnowledge)

    def current(self, source: str) -> SourceKnowledge:
        """What ``source``'s records currently read."""
        try:
            return self.source_versions(source).load()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no knowledge is published for source {source!r} under {self.root}: extract its reports first"
            ) from None

    def record_entities(self, sources: Iterable[str]) -> pl.DataFrame:
        """``record_id, entity_id, status`` of every record of ``sources``, each under its current knowledge."""
        frames = [
            self.records([source]).join(self.entities(self.current(source).knowledge_version), on="report_key")
            for source in sources
        ]
        schema = {"record_id": pl.String, "entity_id": pl.String, "status": pl.String}
        return pl.concat([frame.select(*schema) for frame in frames]) if frames else pl.DataFrame(schema=schema)

    def remove_stale_staging(self) -> int:
        return sum(remove_stale_directories(v / "staging") for v in (self.root / "versions").glob("*"))

    # -- reading -------------------------------------------------------------------------------
    def versions(self) -> pl.DataFrame:
        """Every knowledge version with its provenance, oldest first."""
        rows = [json.loads(p.read_text()) for p in (self.root / "versions").glob("*/provenance.json")]
        if not rows:
            return pl.DataFrame(schema={"knowledge_version": pl.String, "registered_at": pl.String})
        frame = pl.DataFrame([{k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()} for r in rows])
        return frame.sort("registered_at")

    def provenance(self, version: str) -> Provenance:
        document = json.loads((self.version_dir(version) / "provenance.json").read_text())
        return Provenance.model_validate({k: v for k, v in document.items() if k in Provenance.model_fields})

    def table(self, table: str, version: str | None = None) -> pl.DataFrame:
        """``reports``, ``mentions`` or ``quarantine`` of one version (or of all)."""
        files = self.table_files(table, version)
        if not files:
            return pl.DataFrame(TABLES[table].empty_table())
        return _read_frames(files)

    def finished_keys(self, version: str) -> set[str]:
        """Report keys with an outcome under ``version``: extracted or quarantined."""
        keys: set[str] = set()
        for table in ("reports", "quarantine"):
            for path in self.table_files(table, version):
                keys.update(read_parquet(path, columns=["report_key"]).column(0).to_pylist())
        return keys

    def records(self, sources: Iterable[str] | None = None) -> pl.DataFrame:
        files = self.files("records")
        if sources is not None:
            files = [f for f in files if f.stem in set(sources)]
        if not files:
            return pl.DataFrame(RECORDS_SCHEMA.empty_table())
        return _read_frames(files)

    def entities(self, version: str) -> pl.DataFrame:
        """``report_key, entity_id, status``: one row per entity a report speaks of.

        Flagged mentions (evidence not in the report) are left out; where a
        report mentions an entity twice, ``present`` wins over ``uncertain``
        over ``absent``. Join it to :meth:`records` on ``report_key``.
        """
        return _strongest_status(self.table("mentions", version))

    def knowledge(self, version: str, keys: Iterable[str] | None = None) -> dict[str, ReportKnowledge]:
        """The validated knowledge of each report (all, or the given keys)."""
        reports = self.table("reports", version).select("report_key", "knowledge_json")
        if keys is not None:
            reports = reports.filter(pl.col("report_key").is_in(list(keys)))
        return {key: ReportKnowledge.model_validate_json(raw) for key, raw in reports.iter_rows()}


def _strongest_status(mentions: pl.DataFrame) -> pl.DataFrame:
    """One row per (report, entity) of the mentions with evidence: the strongest status."""
    return (
        mentions.filter(pl.col("flag").is_null())
        .with_columns(pl.col("status").replace_strict(_STATUS_RANK, return_dtype=pl.Int8).alias("rank"))
        .sort("report_key", "entity_id", "rank")
        .unique(["report_key", "entity_id"], keep="first", maintain_order=True)
        .select("report_key", "entity_id", "status")
    )


def _parquet_bytes(table: pa.Table) -> bytes:
    """A table as Parquet bytes; pyarrow writes no timestamps, so equal tables give equal bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _read_frames(files: list[UPath]) -> pl.DataFrame:
    """Parquet files through pyarrow, so fsspec URLs work as local paths do."""
    return pl.DataFrame(pa.concat_tables([read_parquet(f) for f in files], promote_options="default"))


def _rows(
    provenance: Provenance, vocabulary: Vocabulary, outcomes: Sequence[ReportOutcome]
) -> dict[str, list[dict[str, object]]]:
    """The tables' rows: what the outcomes say and nothing about when (the same outcomes give
    the same bytes; Dagster and the provenance file keep the times)."""
    common = {
        "knowledge_version": provenance.knowledge_version,
        "extractor": provenance.extractor,
        "prompt_version": provenance.prompt_version,
        "model": provenance.model,
    }
    tables: dict[str, list[dict[str, object]]] = {name: [] for name in TABLES}
    for outcome in outcomes:
        report = outcome.report
        if isinstance(outcome, QuarantinedReport):
            tables["quarantine"].append(
                common
                | {
                    "report_key": report.key,
                    "report_text": report.text,
                    "reason": outcome.reason.value,
                    "detail": outcome.detail,
                    "raw_output": outcome.raw_output,
                    "attempts": outcome.attempts,
                }
            )
            continue
        knowledge = outcome.knowledge
        tables["reports"].append(
            common
            | {
                "report_key": report.key,
                "report_text": report.text,
                "language": knowledge.language,
                "rhythm": knowledge.rhythm,
                "heart_axis": knowledge.heart_axis,
                "mentions": len(knowledge.mentions),
                "flagged_mentions": sum(flag is not None for flag in outcome.flags),
                "notes": list(outcome.notes),
                "attempts": outcome.attempts,
                "raw_output": outcome.raw_output,
                "unmatched": list(outcome.unmatched),
                "knowledge_json": knowledge.model_dump_json(),
                "schema_version": provenance.schema_version,
                "vocabulary_version": provenance.vocabulary_version,
            }
        )
        for position, (mention, flag, decider) in enumerate(
            zip(knowledge.mentions, outcome.flags, outcome.decided_by, strict=True)
        ):
            entity = vocabulary.entity(mention.entity_id)
            tables["mentions"].append(
                common
                | {
                    "report_key": report.key,
                    "position": position,
                    "entity_id": mention.entity_id,
                    "entity_name": entity.name,
                    "category": entity.category,
                    "status": mention.status,
                    "leads": list(mention.leads),
                    "evidence": mention.evidence,
                    "evidence_found": flag is None or flag.evidence_found,
                    "flag": None if flag is None else flag.value,
                    "decided_by": decider,
                }
            )
    return tables
