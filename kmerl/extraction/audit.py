"""The audit: DuckDB views over every version of the knowledge store that cannot change it.

:func:`open_audit` (and ``kmerl audit``, a SQL shell on it) gives an in-memory DuckDB
connection on which the store's tables are Arrow datasets read by this process, and
DuckDB's own file access is switched off and the setting locked: no ``COPY ... TO``, no
``ATTACH``, no file read or written by SQL, whatever an auditor types. The views (what
each version extracted, agreement with labels, what the LLM decided, vocabulary gaps,
``diff_versions``) are the same for every store, local or on an object store.
"""

from __future__ import annotations

import duckdb
import pyarrow.dataset as pads

from kmerl.extraction.gaps import ASSERTED_SQL, CREDITS_SQL, GAPS_SQL
from kmerl.extraction.store import RECORDS_SCHEMA, REJECTED_SCHEMA, TABLES, VOCABULARY_SCHEMA, KnowledgeStore
from kmerl.storage import arrow_location

_BASE_TABLES = {**TABLES, "records": RECORDS_SCHEMA, "rejected": REJECTED_SCHEMA, "vocabulary": VOCABULARY_SCHEMA}
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
               r.notes
        FROM reports r LEFT JOIN mentions m USING (knowledge_version, report_key)
        GROUP BY ALL""",
}
_RECORD_VIEWS = {
    "record_knowledge": """
        SELECT rec.record_id, rec.source, rec.split, rec.report_kind, k.*
        FROM records rec JOIN report_knowledge k USING (report_key)""",
    "entity_credits": f"WITH RECURSIVE credits(entity_id, credited) AS ({CREDITS_SQL}) SELECT * FROM credits",
    "label_entities": """
        SELECT DISTINCT rec.record_id, rec.source, l.system, l.code, v.entity_id
        FROM (SELECT record_id, source, unnest(labels) AS l FROM records) rec
        JOIN (SELECT entity_id, 'scp' AS system, unnest(scp_codes) AS code FROM vocabulary
              UNION ALL SELECT entity_id, 'snomed', unnest(snomed_codes) FROM vocabulary) v
          ON v.system = rec.l.system AND v.code = rec.l.code""",
    # One row per (version, labelled record it covered, entity) where labels or extraction name a
    # label-coded entity, both widened along broader links as the quality report does. A version
    # is charged only for the records whose report it extracted.
    "label_agreement": f"""
        WITH codes AS (SELECT entity_id, 'scp' AS system, unnest(scp_codes) AS code FROM vocabulary
                       UNION ALL SELECT entity_id, 'snomed', unnest(snomed_codes) FROM vocabulary),
             scored AS (SELECT DISTINCT r.record_id, c.entity_id  -- the entities a record's label system can name
                        FROM (SELECT DISTINCT record_id, unnest(labels).system AS system FROM records) r
                        JOIN codes c USING (system)),
             covered AS (SELECT DISTINCT r.knowledge_version, rec.record_id, rec.source
                         FROM reports r JOIN records rec USING (report_key)
                         WHERE rec.record_id IN (SELECT record_id FROM label_entities)),
             truth AS (SELECT DISTINCT c.knowledge_version, c.record_id, c.source, cr.credited AS entity_id
                       FROM covered c JOIN label_entities l USING (record_id)
                       JOIN entity_credits cr ON cr.entity_id = l.entity_id),
             extracted AS (SELECT DISTINCT c.knowledge_version, c.record_id, c.source, cr.credited AS entity_id
                           FROM covered c JOIN records rec USING (record_id)
                           JOIN entities e
                             ON e.knowledge_version = c.knowledge_version AND e.report_key = rec.report_key
                           JOIN entity_credits cr ON cr.entity_id = e.entity_id
                           WHERE e.status IN {ASSERTED_SQL})
        SELECT knowledge_version, source, record_id, entity_id,
               CASE WHEN x.entity_id IS NULL THEN 'missed'
                    WHEN t.entity_id IS NULL THEN 'extra'
                    ELSE 'agree' END AS agreement
        FROM truth t FULL OUTER JOIN extracted x USING (knowledge_version, source, record_id, entity_id)
        WHERE (record_id, entity_id) IN (SELECT (record_id, entity_id) FROM scored)""",
    "agreement_summary": """
        SELECT knowledge_version, source,
               count(DISTINCT record_id) AS records,
               count(*) FILTER (agreement = 'agree') AS agree,
               count(*) FILTER (agreement = 'missed') AS missed,
               count(*) FILTER (agreement = 'extra') AS extra,
               agree / nullif(agree + extra, 0) AS precision,
               agree / nullif(agree + missed, 0) AS recall
        FROM label_agreement GROUP BY knowledge_version, source ORDER BY knowledge_version, source""",
    # What the LLM added or confirmed, beside the labels of the records carrying the report.
    "llm_decisions": """
        SELECT m.knowledge_version, rec.source, rec.split, rec.record_id, m.report_key, m.entity_id, m.status,
               m.decided_by, m.evidence, l.entity_id IS NOT NULL AS labelled
        FROM mentions m JOIN records rec USING (report_key)
        LEFT JOIN (SELECT DISTINCT l.record_id, cr.credited AS entity_id FROM label_entities l
                   JOIN entity_credits cr USING (entity_id)) l
          ON l.record_id = rec.record_id AND l.entity_id = m.entity_id
        WHERE m.decided_by IN ('llm', 'both') AND m.flag IS NULL""",
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


def open_audit(store: KnowledgeStore) -> duckdb.DuckDBPyConnection:
    """A read-only view of the store: see the module docstring. Open one per session; a
    version written afterwards shows up in the next connection."""
    connection = duckdb.connect()
    present = set()
    for name, schema in _BASE_TABLES.items():
        files = store.table_files(name) if name in TABLES else store.files(name)
        if files:
            _, filesystem = arrow_location(files[0])
            paths = [arrow_location(f)[0] for f in files]
            connection.register(f"_{name}", pads.dataset(paths, schema=schema, format="parquet", filesystem=filesystem))
            connection.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
            present.add(name)
    versions = store.versions()
    if versions.height:
        connection.register("_knowledge_versions", versions.to_arrow())
        connection.execute("CREATE VIEW knowledge_versions AS SELECT * FROM _knowledge_versions")
    _create_derived_views(connection, present)
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def _create_derived_views(connection: duckdb.DuckDBPyConnection, present: set[str]) -> None:
    if "reports" not in present:
        return
    for name, sql in _VIEWS.items():
        connection.execute(f"CREATE VIEW {name} AS {sql}")
    connection.execute(_DIFF_MACRO)
    if {"records", "vocabulary"} <= present:
        for name, sql in _RECORD_VIEWS.items():
            connection.execute(f"CREATE VIEW {name} AS {sql}")
        connection.execute(f"CREATE VIEW vocabulary_gaps AS {GAPS_SQL}")
