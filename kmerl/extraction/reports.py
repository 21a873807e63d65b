"""Reports and labels read straight from a source adapter: extraction and its
quality report without an ingested signal store (benchmarks, notebooks)."""

from __future__ import annotations

import polars as pl

from kmerl.extraction.text import report_key
from kmerl.records import RecordRef
from kmerl.sources.base import SourceAdapter


def source_reports(source: SourceAdapter) -> pl.DataFrame:
    """record_id, report, report_key and labels of every record the source lists
    (records it rejects while listing are left out: ingest quarantines them)."""
    refs = [ref for ref in source.iter_records(100) if isinstance(ref, RecordRef)]
    return pl.DataFrame(
        {
            "record_id": [ref.record_id for ref in refs],
            "report": [ref.report or "" for ref in refs],
            "report_key": [report_key(ref.report) for ref in refs],
            "labels": [
                [{"system": label.system, "code": label.code, "score": label.score} for label in ref.labels]
                for ref in refs
            ],
        }
    )
