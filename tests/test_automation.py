"""Sensors and automation conditions, evaluated against a real (temporary) instance."""

import shutil
from pathlib import Path

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    EvaluateAutomationConditionsResult,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
)

from assets.shared.keys import ECG_SIGNALS, REPORT_KNOWLEDGE
from kmerl.config import KmerlConfig
from kmerl.extraction import DEFAULT_PROMPT, ExtractionConfig, describe_extractor
from kmerl.ingest import IngestConfig
from kmerl.preprocess import PreprocessConfig
from kmerl.sources import WfdbFolderSource
from pipeline.defs import build_definitions
from pipeline.defs.jobs import PER_SOURCE_JOB
from pipeline.defs.sensors import archive_observations, prompt_observation, unrecorded
from tests.archives import copy_record


@pytest.fixture
def instance() -> DagsterInstance:
    with instance_for_test() as instance:
        yield instance


def _config(home: Path, archive: Path, target_fs: int = 100) -> KmerlConfig:
    return KmerlConfig(
        home=home,
        sources=[WfdbFolderSource(name="samples", root=archive)],
        ingest=IngestConfig(workers=1, preprocess=PreprocessConfig(target_fs=target_fs)),
        extraction=ExtractionConfig(backend="lexicon"),
    )


# What the per-source stages feed: re-built once every source is fresh again.
TRAINING_CHAIN = {"feature_store", "kmerl_encoder", "encoder_evaluation"}


def _requested(evaluation: EvaluateAutomationConditionsResult, defs: Definitions) -> set[str]:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {key.to_user_string() for key in keys if evaluation.get_num_requested(key)}


def test_new_raw_files_and_code_changes_trigger_ingest_then_training_and_nothing_else(
    tmp_path: Path, wfdb_samples_root: Path, instance: DagsterInstance
) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(wfdb_samples_root, archive)
    config = _config(tmp_path / "home", archive)
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("raw_archive_sensor")
    instance.report_runless_asset_event(prompt_observation(config))  # the prompt sensor's first tick
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance)
    assert evaluation.total_requested == 0  # the first evaluation is the baseline, as in the daemon

    first = sensor(build_sensor_context(instance=instance, definitions=defs))
    assert len(first.asset_events) == 1
    instance.report_runless_asset_event(first.asset_events[0])
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert evaluation.get_requested_partitions(ECG_SIGNALS) == {"samples"}
    assert evaluation.get_requested_partitions(REPORT_KNOWLEDGE) == {"samples"}  # the cascade, in the same run

    defs.resolve_job_def(PER_SOURCE_JOB).execute_in_process(partition_key="samples", instance=instance)
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert _requested(evaluation, defs) == TRAINING_CHAIN  # the per-source stages are fresh

    unchanged = sensor(build_sensor_context(instance=instance, definitions=defs, cursor=first.cursor))
    assert unchanged.asset_events == []

    copy_record(archive / "100", archive, "101")  # a new record arrives
    changed = sensor(build_sensor_context(instance=instance, definitions=defs, cursor=first.cursor))
    assert len(changed.asset_events) == 1 and changed.cursor != first.cursor
    instance.report_runless_asset_event(changed.asset_events[0])
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert evaluation.get_requested_partitions(ECG_SIGNALS) == {"samples"}

    defs.resolve_job_def(PER_SOURCE_JOB).execute_in_process(partition_key="samples", instance=instance)
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert _requested(evaluation, defs) == TRAINING_CHAIN  # the per-source stages are fresh

    retuned = build_definitions(_config(tmp_path / "home", archive, target_fs=500))  # preprocessing changed
    evaluation = evaluate_automation_conditions(defs=retuned, instance=instance, cursor=evaluation.cursor)
    assert evaluation.get_requested_partitions(ECG_SIGNALS) == {"samples"}


def test_a_prompt_edit_re_extracts_without_a_reload_and_nothing_runs_unprompted(
    tmp_path: Path, wfdb_samples_root: Path, instance: DagsterInstance
) -> None:
    prompt = tmp_path / "checklist"
    shutil.copytree(DEFAULT_PROMPT, prompt)
    source = WfdbFolderSource(name="samples", root=wfdb_samples_root)
    config = KmerlConfig(home=tmp_path / "home", sources=[source], extraction=ExtractionConfig(prompt=prompt))
    defs = build_definitions(config)  # loaded once, as a running code location is
    # What the main run records before it materializes, then what it materializes.
    for observation in unrecorded(instance, [*archive_observations(source), prompt_observation(config)]):
        instance.report_runless_asset_event(observation)
    for key in (ECG_SIGNALS, REPORT_KNOWLEDGE):
        instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition="samples"))
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance)

    # The daemon's first ticks (no sensor cursor yet) see what the main run saw: no update, no run.
    for name in ("raw_archive_sensor", "prompt_sensor"):
        assert (
            defs.resolve_sensor_def(name)(build_sensor_context(instance=instance, definitions=defs)).asset_events == []
        )
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert evaluation.total_requested == 0

    (prompt / "system.md").write_text((prompt / "system.md").read_text() + "Answer for every finding listed.\n")
    tick = defs.resolve_sensor_def("prompt_sensor")(build_sensor_context(instance=instance, definitions=defs))
    (edited,) = tick.asset_events
    assert edited.tags["dagster/data_version"] == describe_extractor(config.extraction).prompt_version
    # The sensor asks for the re-extraction itself, once per source and version.
    assert [(r.job_name, r.partition_key) for r in tick.run_requests] == [(None, "samples")]
    assert tick.run_requests[0].run_key == f"{edited.tags['dagster/data_version']}:samples"
    assert (
        edited.tags["dagster/data_version"]
        != prompt_observation(config.model_copy(update={"extraction": ExtractionConfig()})).tags["dagster/data_version"]
    )
    instance.report_runless_asset_event(edited)
    evaluation = evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
    assert _requested(evaluation, defs) == {"report_knowledge"}  # re-extraction only, ecg_signals untouched
    assert evaluation.get_requested_partitions(REPORT_KNOWLEDGE) == {"samples"}


def test_a_new_instance_records_the_prompt_version_and_starts_nothing(
    tmp_path: Path, wfdb_samples_root: Path, instance: DagsterInstance
) -> None:
    source = WfdbFolderSource(name="samples", root=wfdb_samples_root)
    defs = build_definitions(KmerlConfig(home=tmp_path, sources=[source]))
    tick = defs.resolve_sensor_def("prompt_sensor")(build_sensor_context(instance=instance, definitions=defs))
    assert len(tick.asset_events) == 1 and tick.run_requests == []


def test_nightly_refresh_requests_every_source(tmp_path: Path, shared_data: Path) -> None:
    defs = build_definitions(KmerlConfig(home=tmp_path))
    schedule = defs.resolve_schedule_def("nightly_refresh")
    context = build_schedule_context(repository_def=defs.get_repository_def())
    requests = schedule.evaluate_tick(context).run_requests or []
    assert sorted(r.partition_key for r in requests) == ["cinc2021", "ptbxl", "wfdb_samples"]
    assert schedule.cron_schedule == "0 3 * * *"
