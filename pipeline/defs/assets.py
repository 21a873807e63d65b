"""Every asset of the pipeline, stage after stage."""

from __future__ import annotations

from dagster import AssetsDefinition, SourceAsset

from assets import comparison, evaluation, extraction, features, ingest, training
from kmerl.config import KmerlConfig

STAGES = (ingest, extraction, features, training, evaluation, comparison)


def pipeline_assets(config: KmerlConfig) -> list[AssetsDefinition | SourceAsset]:
    return [definition for stage in STAGES for definition in stage.build_assets(config)]
