"""Helpers for tests that kill processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def env_with_venv(**overrides: str) -> dict[str, str]:
    """This environment with the running interpreter's scripts (dagster, torchrun) on PATH,
    as they are when the venv is activated."""
    scripts = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}", **overrides)


def wait_for_group_exit(group: int, timeout_s: float = 10.0) -> None:
    """SIGKILL is asynchronous: a killed run's worker processes may live a moment longer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
