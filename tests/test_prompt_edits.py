"""A prompt edit re-extracts by itself: a real ``dagster dev`` (webserver + daemon), the
real vLLM engine, GraphQL, and no "Reload definitions"."""

import shutil
import time
from pathlib import Path

import pytest

from kmerl.extraction import DEFAULT_PROMPT, ExtractionConfig, describe_extractor
from tests.webserver import dagster_dev, graphql, launch_partition

pytestmark = [pytest.mark.slow, pytest.mark.engine]

LATEST = """
{ assetOrError(assetKey: {path: ["report_knowledge"]}) {
    ... on Asset { assetMaterializations(limit: 1, partitions: ["samples"]) { runId tags { key value } } } } }"""
RUNS = """{ runsOrError(filter: {statuses: [QUEUED, STARTING, STARTED]}) { ... on Runs { results { runId } } } }"""


def _latest_code_version(base: str) -> str | None:
    materializations = graphql(base, LATEST)["assetOrError"]["assetMaterializations"]
    tags = {tag["key"]: tag["value"] for tag in materializations[0]["tags"]} if materializations else {}
    return tags.get("dagster/code_version")


def _quiet_for(base: str, seconds: float) -> bool:
    """No run queued or started for ``seconds`` (over two automation ticks): the runs the
    first extraction set off downstream have been submitted and have finished."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if graphql(base, RUNS)["runsOrError"]["results"]:
            return False
        time.sleep(1)
    return True


def _wait_for(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(2)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def test_editing_a_prompt_re_extracts_under_the_new_version_with_the_daemon_running(
    tmp_path: Path, wfdb_samples_root: Path
) -> None:
    prompt = tmp_path / "checklist"
    shutil.copytree(DEFAULT_PROMPT, prompt)
    config = (
        f'home = "{tmp_path / "kmerl"}"\n\n'
        f'[extraction]\nprompt = "{prompt}"\n\n'
        "[orchestration]\nprompt_poll_seconds = 5\nevaluation_interval_seconds = 5\n\n"
        f'[[sources]]\nkind = "wfdb_folder"\nname = "samples"\nroot = "{wfdb_samples_root}"\n'
    )
    before = describe_extractor(ExtractionConfig(prompt=prompt)).prompt_version
    with dagster_dev(tmp_path, config) as base:
        launch_partition(base, "per_source", "samples")
        _wait_for(lambda: _latest_code_version(base) == before, 420, "the first extraction")
        _wait_for(lambda: _quiet_for(base, 12), 420, "the runs to finish")

        system = prompt / "system.md"
        system.write_text(system.read_text() + "Answer for every finding listed.\n")
        after = describe_extractor(ExtractionConfig(prompt=prompt)).prompt_version
        assert after != before
        _wait_for(lambda: _latest_code_version(base) == after, 420, "re-extraction under the edited prompt")
