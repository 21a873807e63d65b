"""Sensors: new raw files become observations; automation conditions are evaluated."""

from dagster import (
    AssetObservation,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets.shared.keys import RAW_ARCHIVES
from assets.shared.metadata import DATA_VERSION_TAG
from kmerl.config import KmerlConfig
from kmerl.sources.fingerprint import fingerprint_archive


def raw_archive_sensor(config: KmerlConfig) -> SensorDefinition:
    @sensor(
        name="raw_archive_sensor",
        minimum_interval_seconds=config.orchestration.raw_archive_poll_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        asset_selection=[RAW_ARCHIVES],
    )
    def watch(context: SensorEvaluationContext) -> SensorResult:
        """Records a new data version of an archive when its files change; the
        automation condition of ecg_signals then re-ingests that partition."""
        known = dict(line.split("=", 1) for line in (context.cursor or "").splitlines() if "=" in line)
        observations = []
        for source in config.sources:
            fingerprint = fingerprint_archive(source)
            if known.get(source.name) == fingerprint.version:
                continue
            known[source.name] = fingerprint.version
            observations += [
                AssetObservation(
                    asset_key=RAW_ARCHIVES,
                    partition=partition,
                    tags={DATA_VERSION_TAG: fingerprint.version},
                    metadata={"files": fingerprint.files, "bytes": fingerprint.bytes},
                )
                for partition in source.partition_keys()
            ]
        cursor = "\n".join(f"{name}={version}" for name, version in sorted(known.items()))
        return SensorResult(asset_events=observations, cursor=cursor)

    return watch


def automation_sensor(config: KmerlConfig) -> AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; running by default."""
    return AutomationConditionSensorDefinition(
        "kmerl_automation",
        target=AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=config.orchestration.evaluation_interval_seconds,
    )
