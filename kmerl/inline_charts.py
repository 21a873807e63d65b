"""Charts small enough to be drawn where a page shows only short values.

Dagster's asset page draws a Markdown metadata value in place only when it is shorter
than 1,000 characters; an image over that hides behind a "[Show Markdown]" link. A
PNG never fits and matplotlib's SVG runs to tens of kilobytes, so these charts are
SVG written here with integer coordinates and a bounded number of points: the shape
of a loss curve or of an AUROC comparison at a glance, with the full figures (PNG)
beside them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

# Series colours, in order (SVG colour keywords: a "#" would end a data URI), with the
# names a caption uses for them.
PALETTE: tuple[tuple[str, str], ...] = (
    ("steelblue", "blue"),
    ("darkgrey", "grey"),
    ("crimson", "red"),
    ("seagreen", "green"),
    ("orchid", "purple"),
)

Point = tuple[float, float]

# AUROC bars start here, not at 0: the range where models differ fills the chart.
AUROC_FLOOR = 0.4
AUROC_AXIS = f"bars from {AUROC_FLOOR} to 1, dots at chance"


def colour_legend(names: Sequence[str]) -> str:
    """``blue: kmerl, grey: untrained``: how a caption tells the series apart."""
    return ", ".join(f"{colour}: {name}" for (_, colour), name in zip(PALETTE, names, strict=False))


def line_chart(series: Mapping[str, Sequence[Point]], *, width: int = 300, height: int = 80, points: int = 40) -> str:
    """Each series as a polyline of at most ``points`` bin means on shared axes."""
    binned = {name: _bin_means(values, points) for name, values in series.items()}
    every = [point for values in binned.values() for point in values]
    if not every:
        return _frame(width, height, "")
    x_low, x_high = min(x for x, _ in every), max(x for x, _ in every)
    y_low, y_high = min(y for _, y in every), max(y for _, y in every)
    lines = []
    for (colour, _), values in zip(PALETTE, binned.values(), strict=False):
        coordinates = ",".join(
            f"{_scale(x, x_low, x_high, 0, width)},{_scale(y, y_low, y_high, height, 0)}" for x, y in values
        )
        lines.append(f"<path stroke='{colour}' d='M{coordinates}'/>")
    return _frame(width, height, f"<g fill='none' stroke-width='2'>{''.join(lines)}</g>")


def bar_chart(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    low: float = 0.0,
    high: float = 1.0,
    reference: float | None = 0.5,
    width: int = 300,
    height: int = 80,
) -> str:
    """One cluster of bars per group, one bar per series (None or NaN leaves a gap), a
    dotted line at ``reference`` (chance, for AUROC) and each group's name below."""
    plot_height = height - 12  # the group names sit under the bars
    slot = width / max(len(groups), 1)
    bar = 0.8 * slot / max(len(series), 1)
    thickness = max(round(bar), 1)
    shapes = []
    for index, ((colour, _), values) in enumerate(zip(PALETTE, series.values(), strict=False)):
        bars = []
        for position, value in enumerate(values):
            if value is None or math.isnan(value):
                continue
            top = _scale(min(max(value, low), high), low, high, plot_height, 0)
            left = round(position * slot + 0.1 * slot + index * bar)
            bars.append(f"M{left},{plot_height}V{top}h{thickness}V{plot_height}z")
        shapes.append(f"<path fill='{colour}' d='{''.join(bars)}'/>")
    labels = "".join(
        f"<text x='{round((position + 0.5) * slot)}' y='{height - 1}'>{name}</text>"
        for position, name in enumerate(groups)
    )
    body = "".join(shapes) + f"<g font-size='10' text-anchor='middle'>{labels}</g>"
    if reference is not None:
        level = _scale(reference, low, high, plot_height, 0)
        body += f"<path d='M0,{level}H{width}' stroke='black' stroke-dasharray='2'/>"
    return _frame(width, height, body)


def data_uri(svg: str) -> str:
    """The chart as a ``data:`` URI a Markdown image can point at (percent-encoded:
    shorter than base64, and free of the spaces and parentheses Markdown would cut at)."""
    return "data:image/svg+xml," + quote(svg, safe="=/:,.'-")


def _frame(width: int, height: int, body: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' style='background:white'>"
        f"{body}</svg>"
    )


def _bin_means(values: Sequence[Point], bins: int) -> list[Point]:
    """At most ``bins`` points: consecutive points averaged in equal-count bins, so a
    noisy per-step loss keeps its trend and a short series stays as it is."""
    finite = [(x, y) for x, y in values if math.isfinite(y)]
    if len(finite) <= bins:
        return finite
    edges = [round(i * len(finite) / bins) for i in range(bins + 1)]
    return [
        (
            sum(x for x, _ in finite[start:end]) / (end - start),
            sum(y for _, y in finite[start:end]) / (end - start),
        )
        for start, end in itertools.pairwise(edges)
        if end > start
    ]


def _scale(value: float, low: float, high: float, to_low: float, to_high: float) -> int:
    """``value`` from [low, high] to [to_low, to_high], as an integer pixel (mid-range when flat)."""
    if high == low:
        return round((to_low + to_high) / 2)
    return round(to_low + (value - low) / (high - low) * (to_high - to_low))
