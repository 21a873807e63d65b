"""Evaluation tables as Markdown: one model, or several side by side."""

from __future__ import annotations

import polars as pl

SMALL_TEST_NOTE = (
    "Macro AUROC with a {confidence:.0%} bootstrap interval over test records. The test sets are small "
    "(n test per row), so intervals are wide and differences between models within them are noise."
)


def _cell(value: float, low: float, high: float) -> str:
    if value != value:  # NaN: no class could be scored
        return "n/a"
    return f"{value:.3f} [{low:.2f}, {high:.2f}]"


def _difference_cell(row: dict[str, object] | None) -> tuple[str, str]:
    """The paired difference with its interval, and whether the interval excludes 0."""
    if row is None or row["difference"] != row["difference"]:
        return "n/a", "n/a"
    verdict = ("yes" if row["difference"] > 0 else "below") if row["excludes_zero"] else "no"  # type: ignore[operator]
    return f"{row['difference']:+.3f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]", verdict


def verdicts(differences: pl.DataFrame, confidence: float = 0.95) -> list[str]:
    """One line per task: is the model above its untrained twin, zero-shot and with the
    full probe, on all 12 leads (paired bootstrap interval)?"""
    lines = []
    all_leads = differences.filter(pl.col("lead_subset") == "all12")
    for task in all_leads["task"].unique(maintain_order=True).to_list():
        parts = []
        for row in all_leads.filter(pl.col("task") == task).iter_rows(named=True):
            if row["method"] == "zero_shot_text" or row["method"] == "probe_100%":
                cell, verdict = _difference_cell(row)
                parts.append(f"{row['method']} above {row['reference']}: {verdict} ({cell}, n={row['n_test']})")
        if parts:
            lines.append(f"{task}: " + "; ".join(parts) + f" [paired {confidence:.0%} bootstrap]")
    return lines


def results_markdown(results: pl.DataFrame, differences: pl.DataFrame | None = None, confidence: float = 0.95) -> str:
    """A table of one or more models: a column per model, a row per (task, leads, method);
    with ``differences``, the paired difference to each reference (the untrained twin,
    other variants) and whether its interval excludes 0."""
    if results.is_empty():
        return "No task had enough positive test records to evaluate.\n"
    models = results["model"].unique(maintain_order=True).to_list()
    keys = ["task", "lead_subset", "method"]
    cells = results.with_columns(
        pl.struct("macro_auroc", "ci_low", "ci_high")
        .map_elements(lambda r: _cell(r["macro_auroc"], r["ci_low"], r["ci_high"]), return_dtype=pl.String)
        .alias("cell")
    )
    wide = cells.pivot(on="model", index=keys, values="cell", aggregate_function="first")
    sizes = results.group_by(keys, maintain_order=True).agg(pl.col("n_test").max(), pl.col("n_classes").max())
    wide = wide.join(sizes, on=keys, how="left", maintain_order="left")
    paired = (
        {}
        if differences is None or differences.is_empty()
        else {(r["task"], r["lead_subset"], r["method"], r["reference"]): r for r in differences.iter_rows(named=True)}
    )
    # One pair of columns per reference the model was compared with (its untrained twin; in
    # a comparison, every other variant too), in the order the differences list them.
    compared = list({(r["model"], r["reference"]): None for r in paired.values()})
    extra = [c for model, reference in compared for c in (f"{model} - {reference} (paired)", "excludes 0")]
    header = ["task", "leads", "method", *models, *extra, "n test", "classes"]
    lines = [
        SMALL_TEST_NOTE.format(confidence=confidence),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in wide.iter_rows(named=True):
        values = [row["task"], row["lead_subset"], row["method"], *(row[m] or "n/a" for m in models)]
        for _, reference in compared:
            values += _difference_cell(paired.get((row["task"], row["lead_subset"], row["method"], reference)))
        lines.append("| " + " | ".join([*values, str(row["n_test"]), str(row["n_classes"])]) + " |")
    if paired:
        lines += ["", *(f"- {line}" for line in verdicts(differences, confidence))]  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def seeds_markdown(results: pl.DataFrame, differences: pl.DataFrame, first: str) -> str:
    """Over seeds (``seed`` columns): each model's macro AUROC as mean ± standard
    deviation, and ``first`` minus each other model as the mean paired difference, its
    range over seeds and how many seeds' paired intervals exclude 0. A reference scored
    once (the untrained twin, the supervised model) shows its one value."""
    keys = ["task", "lead_subset", "method"]
    seeds = results["seed"].unique(maintain_order=True).to_list()
    spread = results.group_by([*keys, "model"], maintain_order=True).agg(
        pl.col("macro_auroc").mean().alias("mean"), pl.col("macro_auroc").std().alias("sd"), pl.len().alias("runs")
    )
    cells = spread.with_columns(
        pl.struct("mean", "sd", "runs")
        .map_elements(lambda r: _spread_cell(r["mean"], r["sd"], r["runs"]), return_dtype=pl.String)
        .alias("cell")
    )
    models = results["model"].unique(maintain_order=True).to_list()
    wide = cells.pivot(on="model", index=keys, values="cell", aggregate_function="first")
    lines = [
        f"## Over seeds {', '.join(map(str, seeds))}",
        "",
        "Macro AUROC, mean ± standard deviation over the seeds each model was pretrained with (n runs when fewer).",
        "",
        "| " + " | ".join(["task", "leads", "method", *models]) + " |",
        "|" + "---|" * (3 + len(models)),
    ]
    lines += [
        "| " + " | ".join([row["task"], row["lead_subset"], row["method"], *(row[m] or "n/a" for m in models)]) + " |"
        for row in wide.iter_rows(named=True)
    ]
    paired = differences.filter(pl.col("model") == first)
    if paired.is_empty():
        return "\n".join(lines) + "\n"
    summary = paired.group_by([*keys, "reference"], maintain_order=True).agg(
        pl.col("difference").mean().alias("mean"),
        pl.col("difference").min().alias("low"),
        pl.col("difference").max().alias("high"),
        (pl.col("excludes_zero") & (pl.col("difference") > 0)).sum().alias("above"),
        (pl.col("excludes_zero") & (pl.col("difference") < 0)).sum().alias("below"),
        pl.len().alias("runs"),
    )
    lines += [
        "",
        f"{first} minus each reference, paired on the same test records within a seed: the mean over seeds, the "
        "range of the per-seed differences, and in how many seeds the paired interval lies above or below 0.",
        "",
        "| task | leads | method | reference | mean difference | range over seeds | interval above 0 | below 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['task']} | {r['lead_subset']} | {r['method']} | {r['reference']} | {r['mean']:+.3f} | "
        f"[{r['low']:+.3f}, {r['high']:+.3f}] | {r['above']}/{r['runs']} | {r['below']}/{r['runs']} |"
        for r in summary.iter_rows(named=True)
        if r["mean"] == r["mean"]  # NaN: the pair could not be scored
    ]
    return "\n".join(lines) + "\n"


def seeds_report(results: pl.DataFrame, differences: pl.DataFrame, first: str, confidence: float = 0.95) -> str:
    """:func:`seeds_markdown`, then the first seed's table with its intervals."""
    first_seed = results["seed"][0]
    one_seed = pl.col("seed") == first_seed
    return (
        seeds_markdown(results, differences, first)
        + f"\n## Seed {first_seed}, with intervals\n\n"
        + results_markdown(results.filter(one_seed).drop("seed"), differences.filter(one_seed).drop("seed"), confidence)
    )


def _spread_cell(mean: float, sd: float | None, runs: int) -> str:
    if mean != mean:
        return "n/a"
    if runs == 1 or sd is None:
        return f"{mean:.3f} (1 run)"
    return f"{mean:.3f} ± {sd:.3f}"
