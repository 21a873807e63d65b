"""Turning kmerl results into Dagster metadata: tables, schemas and images."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema

# The tag under which Dagster stores an event's data version (not exported by dagster).
DATA_VERSION_TAG = "dagster/data_version"

# What a materialization's metadata may hold, as the assets build it.
MetadataDict = dict[str, MetadataValue | TableSchema | float | int | str | dict[str, Any] | list[Any] | None]


def table_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(columns=[TableColumn(field.name, str(field.type)) for field in schema])


def png_markdown(png: bytes, caption: str) -> MetadataValue:
    """An image the asset page shows inline (Dagster renders data-URI markdown images)."""
    encoded = base64.b64encode(png).decode()
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")


def counts_markdown(counts: Mapping[str, int], key_header: str, value_header: str = "records") -> MetadataValue:
    rows = "\n".join(f"| {key} | {value:,} |" for key, value in counts.items()) or "| (none) | 0 |"
    return MetadataValue.md(f"| {key_header} | {value_header} |\n|---|---:|\n{rows}")


def rounded(values: Mapping[str, Any], digits: int = 3) -> dict[str, Any]:
    """Floats to ``digits`` decimals: what a reader compares, not float noise."""
    return {key: round(value, digits) if isinstance(value, float) else value for key, value in values.items()}


def metadata_values(metadata: Mapping[str, object]) -> dict[str, object]:
    """A materialization's metadata as plain values (what summaries and tests compare)."""
    return {key: getattr(value, "value", value) for key, value in metadata.items()}
