"""Sensors: changed raw files and prompts become observations; automation conditions are evaluated.

An observation counts as an update for ``eager()`` even when its data version is the
one recorded last, so the sensors (and the main run) record only versions the
instance does not hold yet: the first ``make ui`` after ``make run`` starts nothing.
A changed prompt also requests the re-extraction itself: ``eager()`` misses an update
that lands in the same automation tick as a materialization of the asset it feeds.
"""

from collections.abc import Callable, Iterable

from dagster import (
    AssetKey,
    AssetObservation,
    AssetRecordsFilter,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from assets.shared.keys import EXTRACTION_PROMPT, RAW_ARCHIVES
from assets.shared.metadata import DATA_VERSION_TAG
from kmerl.config import KmerlConfig
from kmerl.extraction import describe_extractor
from kmerl.sources import SourceAdapter
from kmerl.sources.fingerprint import fingerprint_archive
from pipeline.defs.jobs import EXTRACT_JOB


def archive_observations(source: SourceAdapter) -> list[AssetObservation]:
    """One observation per partition of ``source``: its files' fingerprint as data version."""
    fingerprint = fingerprint_archive(source)
    return [
        AssetObservation(
            asset_key=RAW_ARCHIVES,
            partition=partition,
            tags={DATA_VERSION_TAG: fingerprint.version},
            metadata={"files": fingerprint.files, "bytes": fingerprint.bytes},
        )
        for partition in source.partition_keys()
    ]


def prompt_observation(config: KmerlConfig) -> AssetObservation:
    """The configured extractor's prompt version, computed from files (no model is loaded)."""
    provenance = describe_extractor(config.extraction)
    return AssetObservation(
        asset_key=EXTRACTION_PROMPT,
        tags={DATA_VERSION_TAG: provenance.prompt_version},
        metadata={"knowledge_version": provenance.knowledge_version, "prompt": provenance.prompt_name or "lexicon"},
    )


def unrecorded(instance: DagsterInstance, observations: Iterable[AssetObservation]) -> list[AssetObservation]:
    """The observations whose data version differs from the latest one recorded."""
    return [
        observation
        for observation in observations
        if _latest_version(instance, observation.asset_key, observation.partition) != observation.tags[DATA_VERSION_TAG]
    ]


def _latest_version(instance: DagsterInstance, key: AssetKey, partition: str | None) -> str | None:
    records = instance.fetch_observations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    observation = records[0].asset_observation if records else None
    return observation.tags.get(DATA_VERSION_TAG) if observation else None


def _polling(
    name: str, interval_s: int, *, job_name: str | None = None, assets: list[AssetKey] | None = None
) -> Callable[[Callable[[SensorEvaluationContext], SensorResult]], SensorDefinition]:
    """A sensor polling every ``interval_s`` for a job or some assets, running by default."""
    return sensor(
        name=name,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        job_name=job_name,
        asset_selection=assets,
    )


def raw_archive_sensor(config: KmerlConfig) -> SensorDefinition:
    @_polling("raw_archive_sensor", config.orchestration.raw_archive_poll_seconds, assets=[RAW_ARCHIVES])
    def watch(context: SensorEvaluationContext) -> SensorResult:
        """Records a new data version of an archive when its files change; the
        automation condition of ecg_signals then re-ingests that partition."""
        known = dict(line.split("=", 1) for line in (context.cursor or "").splitlines() if "=" in line)
        observations: list[AssetObservation] = []
        for source in config.sources:
            current = archive_observations(source)
            version = current[0].tags[DATA_VERSION_TAG]
            if known.get(source.name) != version:
                known[source.name] = version
                observations += unrecorded(context.instance, current)
        cursor = "\n".join(f"{name}={version}" for name, version in sorted(known.items()))
        return SensorResult(asset_events=observations, cursor=cursor)

    return watch


def prompt_sensor(config: KmerlConfig) -> SensorDefinition:
    @_polling("prompt_sensor", config.orchestration.prompt_poll_seconds, job_name=EXTRACT_JOB)
    def watch(context: SensorEvaluationContext) -> SensorResult:
        """Records a new prompt version when a prompt file (or the vocabulary, model,
        sampling) changes, and requests report_knowledge of every source under it, with
        no reload. An instance's first observation only records the version."""
        observation = prompt_observation(config)
        version = observation.tags[DATA_VERSION_TAG]
        recorded = _latest_version(context.instance, EXTRACTION_PROMPT, None)
        if recorded == version:
            return SensorResult(asset_events=[])
        requests = [
            RunRequest(run_key=f"{version}:{partition}", partition_key=partition)
            for partition in (config.partition_keys if recorded is not None else [])
        ]
        return SensorResult(asset_events=[observation], run_requests=requests)

    return watch


def automation_sensor(config: KmerlConfig) -> AutomationConditionSensorDefinition:
    """Evaluates the assets' automation conditions; running by default."""
    return AutomationConditionSensorDefinition(
        "kmerl_automation",
        target=AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=config.orchestration.evaluation_interval_seconds,
    )
