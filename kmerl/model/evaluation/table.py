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


def results_markdown(results: pl.DataFrame, confidence: float = 0.95) -> str:
    """A table of one or more models: a column per model, a row per (task, leads, method)."""
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
    header = ["task", "leads", "method", *models, "n test", "classes"]
    lines = [
        SMALL_TEST_NOTE.format(confidence=confidence),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in wide.iter_rows(named=True):
        values = [row["task"], row["lead_subset"], row["method"], *(row[m] or "n/a" for m in models)]
        lines.append("| " + " | ".join([*values, str(row["n_test"]), str(row["n_classes"])]) + " |")
    return "\n".join(lines) + "\n"
