"""Helpers for tests that kill processes."""

from __future__ import annotations

import os
import time


def wait_for_group_exit(group: int, timeout_s: float = 10.0) -> None:
    """SIGKILL is asynchronous: a killed run's worker processes may live a moment longer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
