"""A real ``dagster dev`` (webserver + daemon) on a free local port, and a GraphQL client."""

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

from pipeline.instance import prepare_instance
from tests.processes import env_with_venv

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(home: Path, config_toml: str, timeout_s: float = 180) -> Iterator[str]:
    """Start ``dagster dev -w workspace.yaml`` on a free port; yield its base URL.

    Started under ``env --default-signal`` so SIGTERM is honoured (a background
    ``dagster dev`` otherwise inherits an ignored handler), stopped by its pid.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "kmerl.toml").write_text(config_toml)
    prepare_instance(home / "dagster")  # as `make ui` does
    port = free_port()
    env = env_with_venv(
        DAGSTER_HOME=str(home / "dagster"),
        KMERL_CONFIG=str(home / "kmerl.toml"),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    log = (home / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [
            "env",
            "--default-signal=INT,TERM",
            "dagster",
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base, process, timeout_s, home / "dagster-dev.log")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_ready(base: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
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
    raise TimeoutError(f"dagster dev not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


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
