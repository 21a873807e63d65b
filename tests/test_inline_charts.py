"""Charts drawn in place on the asset pages: valid SVG, a faithful shape, and short
enough for Dagster to draw them inline at the largest sizes the assets produce."""

import re
import xml.etree.ElementTree as ElementTree
from urllib.parse import unquote

import pytest

from assets.shared.metadata import INLINE_MARKDOWN_LIMIT, inline_chart
from kmerl.inline_charts import AUROC_AXIS, AUROC_FLOOR, bar_chart, colour_legend, data_uri, line_chart
from kmerl.leads import LEAD_SUBSETS

SVG = "{http://www.w3.org/2000/svg}"


def _paths(svg: str) -> list[str]:
    return [path.attrib["d"] for path in ElementTree.fromstring(svg).iter(f"{SVG}path")]


def _numbers(path: str) -> list[int]:
    return [int(number) for number in re.findall(r"-?\d+", path)]


def test_a_long_noisy_series_keeps_its_trend_in_a_bounded_number_of_points() -> None:
    loss = [(float(step), 4.0 - step / 500 + (0.3 if step % 2 else -0.3)) for step in range(1000)]
    (path,) = _paths(line_chart({"training": loss}, height=80, points=40))
    numbers = _numbers(path)
    xs, ys = numbers[0::2], numbers[1::2]
    assert len(xs) == 40 and xs == sorted(xs)
    assert ys == sorted(ys)  # falling loss, growing SVG y: the ±0.3 zigzag is averaged away
    assert ys[0] == 0 and ys[-1] == 80


def test_bars_are_as_tall_as_their_values_and_a_missing_value_leaves_a_gap() -> None:
    svg = bar_chart(["a", "b", "c"], {"kmerl": [1.0, 0.5, None]}, low=0.0, high=1.0, height=112, reference=None)
    (bars,) = _paths(svg)
    numbers = _numbers(bars)  # per bar: M left,bottom V top h width V bottom z
    heights = [bottom - top for bottom, top in zip(numbers[1::5], numbers[2::5], strict=True)]
    assert heights == [100, 50]
    assert [text.text for text in ElementTree.fromstring(svg).iter(f"{SVG}text")] == ["a", "b", "c"]


def test_the_data_uri_holds_nothing_a_markdown_link_or_a_url_would_cut_at() -> None:
    svg = bar_chart(["probe 100%"], {"kmerl": [0.7]})
    uri = data_uri(svg)
    assert unquote(uri.removeprefix("data:image/svg+xml,")) == svg
    assert not set(uri) & set(" ()#<>")


@pytest.mark.parametrize(
    ("groups", "series"),
    [
        (list(LEAD_SUBSETS), ["kmerl", "untrained"]),  # encoder_evaluation, per task and method
        (["kmerl", "untrained", "supervised", "merl_baseline", "no_knowledge", "no_lead_masking"], ["a", "b"]),
    ],
)
def test_the_largest_charts_the_assets_draw_stay_inline(groups: list[str], series: list[str]) -> None:
    values = {name: [0.123456789] * len(groups) for name in series}
    svg = bar_chart(groups, values, width=100 * len(groups), low=AUROC_FLOOR)
    legend = f"({colour_legend(series)}; {AUROC_AXIS})"
    caption = f"cinc2021_snomed, probe_100%: macro AUROC by lead subset, mean over seeds {legend}"
    assert len(str(inline_chart(svg, caption).value)) < INLINE_MARKDOWN_LIMIT


def test_a_chart_too_long_to_draw_inline_is_refused() -> None:
    groups = [f"group {i}" for i in range(40)]
    with pytest.raises(ValueError, match="under 1000 characters"):
        inline_chart(bar_chart(groups, {"kmerl": [0.5] * 40}), "too many bars")
