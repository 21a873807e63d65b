"""Turning kmerl results into Dagster metadata: tables, schemas and images."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema

from kmerl.inline_charts import data_uri

# The tag under which Dagster stores an event's data version (not exported by dagster).
DATA_VERSION_TAG = "dagster/data_version"

# What a materialization's metadata may hold, as the assets build it.
MetadataDict = dict[str, MetadataValue | TableSchema | float | int | str | dict[str, Any] | list[Any] | None]


def table_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(columns=[TableColumn(field.name, str(field.type)) for field in schema])


# The asset page draws a Markdown value in place only below this many characters;
# longer ones (every PNG) open from a "[Show Markdown]" link.
INLINE_MARKDOWN_LIMIT = 1000


def png_markdown(png: bytes, caption: str) -> MetadataValue:
    """A full-size figure, opened from the asset page's "[Show Markdown]" link."""
    encoded = base64.b64encode(png).decode()
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")


def inline_chart(svg: str, caption: str) -> MetadataValue:
    """A chart of :mod:`kmerl.inline_charts` the asset page draws in place, its caption below."""
    text = f"![chart]({data_uri(svg)})\n\n{caption}"
    if len(text) >= INLINE_MARKDOWN_LIMIT:
        raise ValueError(f"an inline chart must stay under {INLINE_MARKDOWN_LIMIT} characters, not {len(text)}")
    return MetadataValue.md(text)


def counts_markdown(counts: Mapping[str, int], key_header: str, value_header: str = "records") -> MetadataValue:
    rows = "\n".join(f"| {key} | {value:,} |" for key, value in counts.items()) or "| (none) | 0 |"
    return MetadataValue.md(f"| {key_header} | {value_header} |\n|---|---:|\n{rows}")


def rounded(values: Mapping[str, Any], digits: int = 3) -> dict[str, Any]:
    """Floats to ``digits`` decimals: what a reader compares, not float noise."""
    return {key: round(value, digits) if isinstance(value, float) else value for key, value in values.items()}


def metadata_values(metadata: Mapping[str, object]) -> dict[str, object]:
    """A materialization's metadata as plain values (what summaries and tests compare)."""
    return {key: getattr(value, "value", value) for key, value in metadata.items()}
