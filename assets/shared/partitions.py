"""Partitions shared by the per-source stages."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from kmerl.config import KmerlConfig

# One group: the whole pipeline reads as one asset graph, stage after stage.
PIPELINE_GROUP = "kmerl"
# The on-demand comparisons (variants; rotated folds against the untrained twin), which
# feed nothing, apart from it.
COMPARISON_GROUP = "comparison"


def corpus_partitions(config: KmerlConfig) -> StaticPartitionsDefinition:
    """One partition per configured report corpus: a new corpus is a configuration entry."""
    return StaticPartitionsDefinition([corpus.name for corpus in config.corpora])


def source_partitions(config: KmerlConfig) -> StaticPartitionsDefinition:
    """One partition per configured source (per slice of a sliced one), so a backfill
    can re-run one archive, or one slice of a large one."""
    return StaticPartitionsDefinition(config.partition_keys)


def evaluation_archive_partitions(config: KmerlConfig) -> StaticPartitionsDefinition:
    """One partition per configured evaluation archive: a new archive is a configuration entry."""
    return StaticPartitionsDefinition([archive.name for archive in config.evaluation_archives])
