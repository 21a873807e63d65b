"""The resources every asset asks for, built from the configuration."""

from __future__ import annotations

from dagster import PipesSubprocessClient

from assets.shared.resources import ExtractorResource, StageProgress, StorageResource
from kmerl.config import KmerlConfig


def pipeline_resources(config: KmerlConfig, progress: StageProgress) -> dict[str, object]:
    return {
        "storage": StorageResource(home=str(config.home), store=config.store),
        "pipes": PipesSubprocessClient(),
        "extractor": ExtractorResource.from_config(config.extraction, config.home),
        "progress": progress,
    }
