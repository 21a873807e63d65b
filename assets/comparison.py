"""K-MERL against a MERL-style baseline and its ablations, on the same data and budget.

Four pretraining runs and their evaluations: an hour on two CPU cores, so this
asset only runs when asked (no automation condition).
"""

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
from assets.shared.metadata import MetadataDict, png_markdown
from assets.shared.partitions import PIPELINE_GROUP
from assets.shared.pools import GPU_POOL
from assets.shared.resources import StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.hashing import stable_hash
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
            sorted(VARIANTS),
            task_sources_identity(config.sources),
            length=16,
        ),
        group_name=PIPELINE_GROUP,
        pool=GPU_POOL,
        kinds={"pytorch"},
    )
    def model_comparison(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Macro AUROC of K-MERL, the MERL-style baseline (joint tokens, zero-filled
        leads, contrastive loss only, no lead masking), K-MERL without the knowledge
        loss and without lead masking, for every task, lead subset and method."""

        def on_metrics(metrics: Metrics) -> None:
            if metrics["event"] == "epoch":
                context.log.info(f"{metrics['variant']} epoch {metrics['epoch']}: loss {metrics['train_loss']:.4f}")

        comparison = compare(
            storage.layout.feature_store,
            storage.layout.runs / "comparison",
            tasks_for_sources(config.sources),
            MiniLmEncoder(),
            model.training,
            model.evaluation,
            on_metrics=on_metrics,
            on_progress=progress.reporter(context, "evaluate variants"),
        )
        out = comparison.out_dir
        metadata: MetadataDict = {
            "comparison": MetadataValue.md((out / "comparison.md").read_text()),
            "timings": MetadataValue.json(comparison.timings),
            "table": MetadataValue.path(str(out / "comparison.parquet")),
        }
        for png in sorted(out.glob("*.png")):
            metadata[f"plot/{png.stem}"] = png_markdown(png.read_bytes(), png.stem)
        rows = comparison.results.select("model", "task", "lead_subset", "method", "macro_auroc").rows()
        return MaterializeResult(metadata=metadata, data_version=DataVersion(stable_hash(rows)))

    return [model_comparison]
