"""Progress of long loops: counts, rate and ETA, reported at a bounded frequency."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None
    elapsed_s: float
    unit: str = "records"
    detail: str = ""  # what a count does not say, e.g. "epoch 3/16, loss 1.234"

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.rate == 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def __str__(self) -> str:
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        share = f" ({self.done / self.total:.1%})" if self.total else ""
        eta = "" if self.eta_s is None else f", ETA {timedelta(seconds=round(self.eta_s))}"
        detail = f"; {self.detail}" if self.detail else ""
        return f"{count} {self.unit}{share}, {self.rate:,.1f} {self.unit}/s{eta}{detail}"


ProgressCallback = Callable[[Progress], None]


class ProgressTracker:
    """Counts work done and calls ``callback`` at most every ``interval_s`` seconds."""

    def __init__(
        self, total: int | None, callback: ProgressCallback | None, interval_s: float, unit: str = "records"
    ) -> None:
        self._total = total
        self._callback = callback
        self._interval_s = interval_s
        self._unit = unit
        self._done = 0
        self._started = time.monotonic()
        self._last_report = self._started
        self._reported: Progress | None = None

    def advance(self, count: int) -> None:
        self._done += count
        now = time.monotonic()
        if now - self._last_report >= self._interval_s:
            self._last_report = now
            self._report(now)

    def finish(self) -> Progress:
        """The final count, reported unless the last report already said it."""
        if self._reported is not None and self._reported.done == self._done:
            return self._reported
        return self._report(time.monotonic())

    def _report(self, now: float) -> Progress:
        progress = Progress(self._done, self._total, now - self._started, self._unit)
        if self._callback is not None:
            self._callback(progress)
        self._reported = progress
        return progress
