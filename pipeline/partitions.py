"""Partitions shared by the per-source stages."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from kmerl.config import KmerlConfig


def source_partitions(config: KmerlConfig) -> StaticPartitionsDefinition:
    """One partition per configured source, so a backfill can re-run one archive."""
    return StaticPartitionsDefinition([source.name for source in config.sources])
