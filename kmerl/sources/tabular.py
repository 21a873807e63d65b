"""Streaming sorted rows out of metadata CSVs of any size."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq


def scan_text_csv(path: Path) -> pl.LazyFrame:
    """A CSV with every column as text; invalid UTF-8 bytes become U+FFFD.

    Text columns keep parsing in our hands, so one odd cell rejects one record
    (with its reason) instead of failing the whole listing.
    """
    return pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")


def count_rows(path: Path) -> int:
    return scan_text_csv(path).select(pl.len()).collect().item()


def stream_sorted_rows(frame: pl.LazyFrame, sort_by: list[str], batch_rows: int = 4096) -> Iterator[dict[str, Any]]:
    """Rows of ``frame`` sorted by ``sort_by``, as dicts, in bounded memory.

    Polars' streaming engine sorts and joins out of core into a temporary Parquet
    file, which is then read one batch at a time: MIMIC-IV-ECG's 800k-row metadata
    never sits in memory at once.
    """
    with tempfile.TemporaryDirectory(prefix="kmerl-listing-") as tmp:
        path = Path(tmp) / "rows.parquet"
        frame.sort(sort_by).sink_parquet(path)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield from batch.to_pylist()


def lossy_text_notes(text: str | None) -> tuple[str, ...]:
    """A note for text in which invalid UTF-8 bytes were replaced."""
    if text is not None and "\ufffd" in text:
        return ("report contained bytes that are not valid UTF-8; they were replaced with U+FFFD",)
    return ()


def parse_float(text: str | None) -> float | None:
    """A number from a CSV cell; None when empty or not a number."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def parse_int(text: str | None) -> int | None:
    value = parse_float(text)
    return None if value is None else int(value)


def parse_id(text: str | None) -> str | None:
    value = parse_int(text)
    return None if value is None else str(value)


def parse_datetime(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
