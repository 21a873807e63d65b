"""Progress bars for a person at a terminal.

The library reports how far a loop is as :class:`kmerl.progress.Progress` values;
commands turn them into one bar per stage (count, rate, elapsed time, ETA) drawn by
rich on stderr, so that stdout keeps only results. Away from a terminal the bars
are printed once, finished, when the command ends.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from kmerl.progress import Progress

# Away from a terminal (a log, CI) rich would assume 80 columns and cut the bars short.
WIDTH_AWAY_FROM_A_TERMINAL = 120


def console(stderr: bool = False) -> Console:
    """A console for bars (stderr) or results (stdout) that leaves long lines whole."""
    terminal = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not terminal.is_terminal:
        terminal.width = WIDTH_AWAY_FROM_A_TERMINAL
    return terminal


class StageBars:
    """The bars of one command's stages; use it as a context manager."""

    def __init__(self, terminal: Console | None = None) -> None:
        self.console = terminal or console(stderr=True)
        self._bars = RichProgress(
            TextColumn("{task.description:<20}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]:<7}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[detail]}"),
            console=self.console,
        )

    def __enter__(self) -> StageBars:
        self._bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._bars.stop()

    def stage(self, label: str) -> StageBar:
        """A new bar, empty until its first report."""
        return StageBar(self._bars, self._bars.add_task(label, total=None, unit="", detail=""))


class StageBar:
    def __init__(self, bars: RichProgress, task: TaskID) -> None:
        self._bars = bars
        self._task = task

    def __call__(self, progress: Progress) -> None:
        """Show ``progress``: a :data:`kmerl.progress.ProgressCallback`."""
        self._bars.update(
            self._task, completed=progress.done, total=progress.total, unit=progress.unit, detail=progress.detail
        )
