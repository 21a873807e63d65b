"""K-MERL against a MERL-style baseline and its ablations, on the same data and budget.

Four pretraining runs per seed and their evaluations: an hour per seed on two CPU cores, so this
asset only runs when asked (no automation condition).
"""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)

from assets.shared.keys import FEATURE_STORE, MODEL_COMPARISON
from assets.shared.metadata import MetadataDict, inline_chart, png_markdown
from assets.shared.partitions import COMPARISON_GROUP
from assets.shared.pools import GPU_POOL
from assets.shared.resources import StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.hashing import stable_hash
from kmerl.inline_charts import AUROC_AXIS, AUROC_FLOOR, bar_chart, colour_legend
from kmerl.model.evaluation.evaluate import ZERO_SHOT_TEXT, probe_method
from kmerl.model.evaluation.tasks import task_sources_identity, tasks_for_sources
from kmerl.model.experiments import VARIANTS, compare
from kmerl.model.runs import Metrics
from kmerl.text_encoder import MiniLmEncoder


def build_assets(config: KmerlConfig) -> list[AssetsDefinition]:
    model = config.model

    @asset(
        key=MODEL_COMPARISON,
        deps=[FEATURE_STORE],
        code_version=stable_hash(
            model.training,
            model.evaluation,
            model.comparison,
            sorted(VARIANTS),
            task_sources_identity(config.sources),
            length=16,
        ),
        # Apart from the pipeline's group: it reads the feature store but feeds nothing.
        group_name=COMPARISON_GROUP,
        pool=GPU_POOL,
        kinds={"pytorch"},
    )
    def model_comparison(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Macro AUROC of K-MERL, the MERL-style baseline (joint tokens, zero-filled
        leads, contrastive loss only, no lead masking), K-MERL without the knowledge
        loss and without lead masking, for every task, lead subset and method, each
        pretrained once per configured seed (model.comparison.seeds): mean and spread
        over seeds, and K-MERL's paired difference to each variant per seed."""

        def on_metrics(metrics: Metrics) -> None:
            if metrics["event"] == "epoch":
                context.log.info(
                    f"{metrics['variant']} seed {metrics['seed']} epoch {metrics['epoch']}: "
                    f"loss {metrics['train_loss']:.4f}"
                )

        comparison = compare(
            storage.layout.feature_store,
            storage.layout.comparison,
            tasks_for_sources(config.sources),
            MiniLmEncoder(),
            model.training,
            model.evaluation,
            seeds=model.comparison.seeds,
            on_metrics=on_metrics,
            on_progress=progress.reporter(context, "evaluate variants"),
        )
        out = comparison.out_dir
        full_probe = probe_method(max(model.evaluation.probe_fractions))
        metadata: MetadataDict = {
            **{
                f"auroc_chart/{task}": _models_chart(comparison.results, task, full_probe)
                for task in comparison.results["task"].unique(maintain_order=True)
            },
            "comparison": MetadataValue.md((out / "comparison.md").read_text()),
            "timings": MetadataValue.json(comparison.timings),
            "table": MetadataValue.path(str(out / "comparison.parquet")),
        }
        for png in sorted(out.glob("*.png")):
            metadata[f"plot/{png.stem}"] = png_markdown(png.read_bytes(), png.stem)
        rows = comparison.results.select("seed", "model", "task", "lead_subset", "method", "macro_auroc").rows()
        return MaterializeResult(metadata=metadata, data_version=DataVersion(stable_hash(rows)))

    return [model_comparison]


def _models_chart(results: pl.DataFrame, task: str, full_probe: str) -> MetadataValue:
    """Every model's macro AUROC on all twelve leads (mean over seeds), zero-shot and with the full probe."""
    rows = results.filter((pl.col("task") == task) & (pl.col("lead_subset") == "all12"))
    models = rows["model"].unique(maintain_order=True).to_list()
    means = rows.group_by("model", "method").agg(pl.col("macro_auroc").mean())
    auroc = {(r["model"], r["method"]): r["macro_auroc"] for r in means.iter_rows(named=True)}
    methods = [ZERO_SHOT_TEXT, full_probe]
    by_method = {m: [auroc.get((model, m)) for model in models] for m in methods}
    svg = bar_chart(models, by_method, width=100 * len(models), low=AUROC_FLOOR)
    caption = f"{task}, all 12 leads: macro AUROC per model, mean over seeds ({colour_legend(methods)}; {AUROC_AXIS})"
    return inline_chart(svg, caption)
