"""A real ``dagster dev`` (webserver + daemon) or webserver on a free local port, a GraphQL
client and a browser."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pipeline.instance import prepare_instance
from tests.processes import env_with_venv

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"  # screenshots, kept for people to look at


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(home: Path, config_toml: str, timeout_s: float = 180) -> Iterator[str]:
    """Start ``dagster dev -w workspace.yaml`` (webserver + daemon) on a free port; yield its base URL."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "kmerl.toml").write_text(config_toml)
    prepare_instance(home / "dagster")  # as `make ui` does
    log = home / "dagster-dev.log"
    with _serving(["dagster", "dev"], home / "dagster", home / "kmerl.toml", log, timeout_s) as base:
        yield base


@contextmanager
def dagster_webserver(dagster_home: Path, config_file: Path, timeout_s: float = 180) -> Iterator[str]:
    """Start the webserver alone over an existing instance (what a reader of finished
    runs needs: no daemon, nothing launched); yield its base URL."""
    log = dagster_home / "webserver.log"
    with _serving(["dagster-webserver"], dagster_home, config_file, log, timeout_s) as base:
        yield base


@contextmanager
def _serving(
    command: list[str], dagster_home: Path, config_file: Path, log_path: Path, timeout_s: float
) -> Iterator[str]:
    """Run ``command -w workspace.yaml`` on a free port over ``dagster_home``.

    Started under ``env --default-signal`` so SIGTERM is honoured (a background
    ``dagster dev`` otherwise inherits an ignored handler), stopped by its pid.
    """
    port = free_port()
    env = env_with_venv(
        DAGSTER_HOME=str(dagster_home),
        KMERL_CONFIG=str(config_file),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    log = log_path.open("w")
    process = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *command, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base, process, timeout_s, log_path)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def browser_page(base: str, path: str) -> Iterator[Page]:
    """Debian's Chromium on ``base + path``, past the first-visit newsletter dialog."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{base}{path}", wait_until="networkidle")
            try:
                skip = page.get_by_role("button", name="Skip")
                skip.wait_for(timeout=10_000)
                skip.click()
            except PlaywrightTimeoutError:
                pass
            yield page
        finally:
            browser.close()


def _wait_until_ready(base: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                pass
            if (
                graphql(base, "{ repositoriesOrError { __typename } }")["repositoriesOrError"]["__typename"]
                == "RepositoryConnection"
            ):
                return
        except (urllib.error.URLError, ConnectionError, KeyError):
            pass
        time.sleep(1)
    raise TimeoutError(f"{process.args} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


REPOSITORIES = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  }
}"""


def launch_partition(base: str, job: str, partition: str) -> str:
    """Launch ``job`` for one partition through GraphQL, as the UI's launchpad does; its run id."""
    (repository,) = graphql(base, REPOSITORIES)["repositoriesOrError"]["nodes"]
    params = {
        "selector": {
            "repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"],
            "jobName": job,
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(base, LAUNCH, {"params": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job} for {partition} failed: {launched}")
    return launched["run"]["runId"]
