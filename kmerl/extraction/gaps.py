"""The vocabulary-gap report: the report statements no vocabulary term accounts for,
most frequent first, with the labels of the records they appear in.

This is how the vocabulary grows: a statement that recurs across many reports and
co-occurs with a label the extraction missed is a synonym (or an entity) the
vocabulary lacks. The lexicon records each report's unmatched statements
(:attr:`kmerl.extraction.lexicon.Reading.unmatched`) in the knowledge store, and one
SQL query turns them into the report, both as the ``vocabulary_gaps`` view of the
DuckDB audit database and from Python (:func:`vocabulary_gaps`) over frames.
"""

from __future__ import annotations

import re

import duckdb
import polars as pl

from kmerl.extraction.lexicon import Reading
from kmerl.extraction.schema import ASSERTED
from kmerl.extraction.text import fold
from kmerl.extraction.vocabulary import Vocabulary

_DIGITS = re.compile(r"[0-9]+")
_TOP_LABELS = 5


def gap_key(fragment: str) -> str:
    """The form unmatched statements are counted under: folded, numbers as ``#``."""
    return _DIGITS.sub("#", fold(fragment).folded)


def unmatched_statements(reading: Reading) -> tuple[str, ...]:
    """A report's unmatched statements as stored: gap keys, each once, in order."""
    return tuple(dict.fromkeys(gap_key(fragment.text) for fragment in reading.unmatched))


ASSERTED_SQL = "(" + ", ".join(f"'{status}'" for status in ASSERTED) + ")"  # the statuses, as an SQL list


# Each entity with every entity it credits: itself and its broader ones (the recursive
# part names the relation ``credits``), as the quality report widens labels and extractions.
CREDITS_SQL = """
        SELECT entity_id, entity_id AS credited FROM vocabulary
        UNION
        SELECT c.entity_id, v.broader FROM credits c JOIN vocabulary v ON v.entity_id = c.credited
        WHERE v.broader IS NOT NULL"""

# Needs relations ``reports`` (knowledge_version, report_key, unmatched), ``records``
# (record_id, report_key, labels, split), ``entities`` (knowledge_version, report_key,
# entity_id, status) and ``vocabulary`` (entity_id, broader, scp_codes, snomed_codes).
GAPS_SQL = f"""
WITH RECURSIVE credits(entity_id, credited) AS ({CREDITS_SQL}),
    codes AS (
        SELECT entity_id, 'scp' AS system, unnest(scp_codes) AS code FROM vocabulary
        UNION ALL SELECT entity_id, 'snomed', unnest(snomed_codes) FROM vocabulary),
    statements AS (
        SELECT DISTINCT s.knowledge_version, rec.split, s.report_key, rec.record_id, s.statement
        FROM (SELECT knowledge_version, report_key, unnest(unmatched) AS statement FROM reports) s
        LEFT JOIN records rec USING (report_key)),
    labels AS (
        SELECT DISTINCT r.record_id, r.label.code AS code, c.entity_id
        FROM (SELECT record_id, unnest(labels) AS label FROM records) r
        LEFT JOIN codes c ON c.system = r.label.system AND c.code = r.label.code),
    credited AS (
        SELECT DISTINCT e.knowledge_version, rec.record_id, c.credited AS entity_id
        FROM entities e JOIN records rec USING (report_key) JOIN credits c USING (entity_id)
        WHERE e.status IN {ASSERTED_SQL}),
    per_label AS (
        SELECT s.knowledge_version, s.split, s.statement, l.code,
               count(DISTINCT s.record_id) AS records,
               count(DISTINCT s.record_id) FILTER (l.entity_id IS NOT NULL AND cr.entity_id IS NULL) AS missed
        FROM statements s JOIN labels l USING (record_id)
        LEFT JOIN credited cr ON cr.knowledge_version = s.knowledge_version
             AND cr.record_id = s.record_id AND cr.entity_id = l.entity_id
        GROUP BY ALL),
    per_statement AS (
        SELECT knowledge_version, split, statement, count(DISTINCT report_key) AS reports,
               count(DISTINCT record_id) AS records
        FROM statements GROUP BY ALL)
SELECT p.knowledge_version, p.split, p.statement, p.reports, p.records,
       coalesce((SELECT list(l.code || ' ' || l.missed ORDER BY l.missed DESC, l.code)[:{_TOP_LABELS}] FROM per_label l
                 WHERE l.knowledge_version = p.knowledge_version AND l.split IS NOT DISTINCT FROM p.split
                   AND l.statement = p.statement AND l.missed > 0), []) AS missed_labels,
       coalesce((SELECT list(l.code || ' ' || l.records ORDER BY l.records DESC, l.code)[:{_TOP_LABELS}]
                 FROM per_label l
                 WHERE l.knowledge_version = p.knowledge_version AND l.split IS NOT DISTINCT FROM p.split
                   AND l.statement = p.statement), []) AS labels
FROM per_statement p
ORDER BY p.knowledge_version, p.split, p.reports DESC, p.statement
"""


def vocabulary_gaps(
    reports: pl.DataFrame, records: pl.DataFrame, entities: pl.DataFrame, vocabulary: Vocabulary
) -> pl.DataFrame:
    """The gap report over in-memory frames (see :data:`GAPS_SQL` for the columns each needs;
    ``split`` may be missing). One row per version, split and statement.

    ``missed_labels`` lists, per statement, the label codes whose entity the extraction
    did not assert in records carrying the statement, with how many records; ``labels``
    every co-occurring label code with its record count.
    """
    if "split" not in records.columns:
        records = records.with_columns(split=pl.lit(None, pl.String))
    with duckdb.connect() as connection:
        for name, frame in (
            ("reports", reports),
            ("records", records.select("record_id", "report_key", "labels", "split")),
            ("entities", entities),
            ("vocabulary", vocabulary.frame()),
        ):
            connection.register(name, frame.to_arrow())
        return pl.from_arrow(connection.sql(GAPS_SQL).to_arrow_table())  # type: ignore[return-value]


def gaps_markdown(gaps: pl.DataFrame, top: int = 25) -> str:
    lines = [
        "| unmatched statement | reports | records | labels missed there | labels there |",
        "|---|---:|---:|---|---|",
    ]
    for row in gaps.head(top).iter_rows(named=True):
        statement = row["statement"].replace("|", "\\|")
        lines.append(
            f"| {statement} | {row['reports']} | {row['records']} | {', '.join(row['missed_labels'])} "
            f"| {', '.join(row['labels'])} |"
        )
    return "\n".join(lines) + "\n"
