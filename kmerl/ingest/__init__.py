"""Ingest: WFDB archives into the versioned, sharded Parquet signal store."""

from kmerl.ingest.config import IngestConfig
from kmerl.ingest.runner import ingest_source
from kmerl.progress import Progress

__all__ = ["IngestConfig", "Progress", "ingest_source"]
