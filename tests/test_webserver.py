"""The pipeline as users see it: a real webserver and daemon, GraphQL, and a browser."""

import time
from pathlib import Path

import pytest

from tests.webserver import ARTIFACTS, browser_page, dagster_dev, graphql, launch_partition

pytestmark = pytest.mark.browser

ASSETS = "{ assetNodes { assetKey { path } } }"
PIPELINE_ASSETS = {
    "raw_ecg_archives",
    "extraction_prompt",
    "ecg_signals",
    "report_knowledge",
    "report_corpus_knowledge",
    "feature_store",
    "kmerl_encoder",
    "encoder_evaluation",
    "model_comparison",
    "rotated_evaluation",
}
RUN_STATUS = """query Status($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory, wfdb_samples_root: Path) -> str:
    home = tmp_path_factory.mktemp("dagster-dev")
    config = (
        f'home = "{home / "kmerl"}"\n\n'
        f'[[sources]]\nkind = "wfdb_folder"\nname = "samples"\nroot = "{wfdb_samples_root}"\n'
    )
    with dagster_dev(home, config) as base:
        yield base


def test_graphql_lists_assets_and_runs_a_materialization(webserver: str) -> None:
    keys = {"/".join(node["assetKey"]["path"]) for node in graphql(webserver, ASSETS)["assetNodes"]}
    assert keys == PIPELINE_ASSETS

    run_id = launch_partition(webserver, "ingest_sources", "samples")
    deadline, status = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        status = graphql(webserver, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(1)
    assert status == "SUCCESS"


def test_browser_shows_the_asset_graph(webserver: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(webserver, "/asset-groups") as page:
        page.get_by_text("encoder_evaluation").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "asset-graph.png"), full_page=True)
        text = page.inner_text("body")
    assert set(text.split()) >= PIPELINE_ASSETS
