"""Ingest: WFDB archives into the versioned, sharded Parquet signal store."""

from kmerl.ingest.config import IngestConfig
from kmerl.ingest.runner import ingest_source

__all__ = ["IngestConfig", "ingest_source"]
