"""The pipeline as users see it: a real webserver and daemon, GraphQL, and a browser."""

import time
from pathlib import Path

import pytest

from assets.shared.partitions import COMPARISON_GROUP
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
    """The lineage page opens on the two groups collapsed; expanded (the graph's own
    "Expand all groups" shortcut), every asset is drawn, long names elided in the middle."""
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(webserver, "/asset-groups") as page:
        page.get_by_text(COMPARISON_GROUP).first.wait_for(timeout=60_000)
        page.keyboard.press("Alt+e")
        page.get_by_text("encoder_evaluation").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "asset-graph.png"), full_page=True)
        labels = page.inner_text("body").split()
    missing = {name for name in PIPELINE_ASSETS if not any(_draws(label, name) for label in labels)}
    assert not missing, f"not drawn: {sorted(missing)}"


def _draws(label: str, name: str) -> bool:
    """Whether a node label shows ``name``, whole or as ``head…tail``."""
    head, elided, tail = label.partition("\u2026")
    if not elided:
        return label == name
    return len(head) + len(tail) < len(name) and name.startswith(head) and name.endswith(tail)
