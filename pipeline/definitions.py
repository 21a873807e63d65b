"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs``."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from assets import extraction, ingest
from pipeline.resources import ExtractorResource, StorageResource

ingest_job = define_asset_job(
    "ingest_sources",
    selection=AssetSelection.assets(ingest.ecg_signals),
    description="Ingest one source archive into the signal store.",
)

defs = Definitions(
    assets=[ingest.ecg_signals, extraction.report_knowledge],
    jobs=[ingest_job],
    resources={"storage": StorageResource(), "extractor": ExtractorResource()},
)
