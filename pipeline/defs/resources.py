"""The resources every asset asks for, built from the configuration."""

from __future__ import annotations

from dagster import PipesSubprocessClient

from assets.shared.resources import AuditDatabaseResource, ExtractorResource, StageProgress, StorageResource
from kmerl.config import KmerlConfig


def pipeline_resources(config: KmerlConfig, progress: StageProgress) -> dict[str, object]:
    layout = config.layout
    return {
        "storage": StorageResource(home=str(config.home), store=config.store),
        "pipes": PipesSubprocessClient(),
        "extractor": ExtractorResource.from_config(config.extraction, config.home),
        "audit": AuditDatabaseResource(path=str(layout.audit_database)),
        "progress": progress,
    }
