"""The DuckDB audit database: views over every version of the knowledge store.

Auditors open it read-only (``duckdb.connect(path, read_only=True)``). The
views read the store's Parquet files through globs, so versions written after
the database was built show up too; tables that did not exist yet (e.g.
``records`` before any source was linked) appear when it is rebuilt.
"""

from __future__ import annotations

import glob
import os
import uuid
from pathlib import Path

import duckdb

from kmerl.extraction.store import KnowledgeStore
from kmerl.storage import is_local

# Statuses that assert an entity; must match kmerl.extraction.quality.ASSERTED.
_ASSERTED = "('present', 'uncertain')"

_VIEWS = {
    # per (version, report, entity): the strongest status, as KnowledgeStore.entities returns it
    "entities": """
        SELECT knowledge_version, report_key, entity_id,
               arg_min(status, CASE status WHEN 'present' THEN 0 WHEN 'uncertain' THEN 1 ELSE 2 END) AS status
        FROM mentions WHERE flag IS NULL GROUP BY ALL""",
    "report_knowledge": """
        SELECT r.knowledge_version, r.extractor, r.model, r.prompt_version, r.report_key, r.report_text,
               r.language, r.rhythm, r.heart_axis,
               list(m.entity_id ORDER BY m.position) FILTER (m.status = 'present' AND m.flag IS NULL) AS present,
               list(m.entity_id ORDER BY m.position) FILTER (m.status = 'uncertain' AND m.flag IS NULL) AS uncertain,
               list(m.entity_id ORDER BY m.position) FILTER (m.status = 'absent' AND m.flag IS NULL) AS absent,
               list(m.entity_id ORDER BY m.position) FILTER (m.flag IS NOT NULL) AS flagged,
               r.notes, r.extracted_at
        FROM reports r LEFT JOIN mentions m USING (knowledge_version, report_key)
        GROUP BY ALL""",
}
_RECORD_VIEWS = {
    "record_knowledge": """
        SELECT rec.record_id, rec.source, k.* FROM records rec JOIN report_knowledge k USING (report_key)""",
    "label_entities": """
        SELECT DISTINCT rec.record_id, rec.source, l.system, l.code, v.entity_id
        FROM (SELECT record_id, source, unnest(labels) AS l FROM records) rec
        JOIN (SELECT entity_id, 'scp' AS system, unnest(scp_codes) AS code FROM vocabulary
              UNION ALL SELECT entity_id, 'snomed', unnest(snomed_codes) FROM vocabulary) v
          ON v.system = rec.l.system AND v.code = rec.l.code""",
    # one row per (version, labelled record, entity) where labels or extraction name a label-coded entity
    "label_agreement": f"""
        WITH scored AS (SELECT DISTINCT entity_id FROM vocabulary WHERE len(scp_codes) + len(snomed_codes) > 0),
             truth AS (SELECT v.knowledge_version, l.record_id, l.entity_id
                       FROM (SELECT DISTINCT knowledge_version FROM reports) v,
                            (SELECT DISTINCT record_id, entity_id FROM label_entities) l),
             extracted AS (SELECT DISTINCT e.knowledge_version, rec.record_id, e.entity_id
                           FROM records rec JOIN entities e USING (report_key)
                           WHERE e.status IN {_ASSERTED}
                             AND rec.record_id IN (SELECT record_id FROM label_entities)
                             AND e.entity_id IN (SELECT entity_id FROM scored))
        SELECT knowledge_version, record_id, entity_id,
               CASE WHEN x.entity_id IS NULL THEN 'missed'
                    WHEN t.entity_id IS NULL THEN 'extra'
                    ELSE 'agree' END AS agreement
        FROM truth t FULL OUTER JOIN extracted x USING (knowledge_version, record_id, entity_id)""",
    "agreement_summary": """
        SELECT knowledge_version,
               count(DISTINCT record_id) AS records,
               count(*) FILTER (agreement = 'agree') AS agree,
               count(*) FILTER (agreement = 'missed') AS missed,
               count(*) FILTER (agreement = 'extra') AS extra,
               agree / nullif(agree + extra, 0) AS precision,
               agree / nullif(agree + missed, 0) AS recall
        FROM label_agreement GROUP BY knowledge_version""",
}
# Which reports gained, lost or changed which entities between two versions (reports both extracted).
_DIFF_MACRO = """
    CREATE MACRO diff_versions(version_a, version_b) AS TABLE
    WITH a AS (SELECT report_key, entity_id, status FROM entities WHERE knowledge_version = version_a),
         b AS (SELECT report_key, entity_id, status FROM entities WHERE knowledge_version = version_b),
         both_done AS (SELECT report_key FROM reports WHERE knowledge_version = version_a
                       INTERSECT SELECT report_key FROM reports WHERE knowledge_version = version_b)
    SELECT report_key, entity_id, a.status AS status_a, b.status AS status_b,
           CASE WHEN a.status IS NULL THEN 'gained'
                WHEN b.status IS NULL THEN 'lost'
                ELSE 'status_changed' END AS change
    FROM a FULL OUTER JOIN b USING (report_key, entity_id)
    WHERE report_key IN (SELECT report_key FROM both_done) AND a.status IS DISTINCT FROM b.status
    ORDER BY report_key, entity_id"""


def build_audit_database(store: KnowledgeStore, path: Path) -> Path:
    """(Re)build the audit database at ``path``, atomically: readers keep the old file
    until the new one is complete.

    The views read the store's files by glob, so the store must be on a local or
    mounted file system (object stores need DuckDB's httpfs and credentials there).
    """
    if not is_local(store.root):
        raise ValueError(f"the audit database reads the knowledge store by glob; {store.root} is not a local path")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with duckdb.connect(str(temp)) as connection:
            _create_views(connection, store)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        temp.with_name(temp.name + ".wal").unlink(missing_ok=True)
    return path


def _create_views(connection: duckdb.DuckDBPyConnection, store: KnowledgeStore) -> None:
    """Views over the files that exist; the dependent views only where their inputs do."""
    present = {
        name
        for name in ("reports", "mentions", "quarantine", "records", "vocabulary", "provenance")
        if glob.glob(store.glob(name))
    }
    reader = dict.fromkeys(present, "read_parquet") | {"provenance": "read_json_auto"}
    for name in sorted(present):
        view = "knowledge_versions" if name == "provenance" else name
        connection.execute(
            f"CREATE VIEW {view} AS SELECT * FROM {reader[name]}({_quote(store.glob(name))}, union_by_name = true)"
        )
    if "reports" not in present:
        return
    for name, sql in _VIEWS.items():
        connection.execute(f"CREATE VIEW {name} AS {sql}")
    connection.execute(_DIFF_MACRO)
    if {"records", "vocabulary"} <= present:
        for name, sql in _RECORD_VIEWS.items():
            connection.execute(f"CREATE VIEW {name} AS {sql}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
