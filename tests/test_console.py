"""Progress bars as a person sees them (rendered into a string instead of a terminal)."""

import io
import sys

import pytest
from rich.console import Console

from kmerl.console import StageBars, console
from kmerl.progress import Progress


def test_each_stage_gets_a_bar_with_its_count_unit_and_detail() -> None:
    output = io.StringIO()
    with StageBars(Console(file=output, width=120)) as bars:
        ingest, pretrain = bars.stage("ingest ptbxl"), bars.stage("pretrain")
        ingest(Progress(256, 500, 2.0, "records"))
        ingest(Progress(500, 500, 4.0, "records"))
        pretrain(Progress(30, 48, 9.0, "steps", "epoch 3, loss 1.234"))
    lines = [line for line in output.getvalue().splitlines() if line.strip()]
    ingest_line, pretrain_line = lines[-2], lines[-1]
    assert ingest_line.startswith("ingest ptbxl") and "500/500" in ingest_line and "records" in ingest_line
    assert pretrain_line.startswith("pretrain") and "30/48" in pretrain_line and "epoch 3, loss 1.234" in pretrain_line


def test_away_from_a_terminal_lines_are_not_cut_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file, say
    assert console().width >= 120
