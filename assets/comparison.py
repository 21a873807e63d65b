"""K-MERL against a MERL-style baseline and its ablations, on the same data and budget.

Four pretraining runs and their evaluations: an hour on two CPU cores, so this
asset only runs when asked (no automation condition).
"""

from dagster import AssetExecutionContext, AssetKey, DataVersion, Definitions, MaterializeResult, MetadataValue, asset

from assets.features import FEATURE_STORE
from kmerl.config import KmerlConfig
from kmerl.hashing import stable_hash
from kmerl.model.evaluation.tasks import task_sources_identity, tasks_for_sources
from kmerl.model.experiments import VARIANTS, compare
from kmerl.text_encoder import MiniLmEncoder
from pipeline.executors import GPU_POOL
from pipeline.metadata import png_markdown
from pipeline.partitions import PIPELINE_GROUP
from pipeline.resources import StorageResource

MODEL_COMPARISON = AssetKey("model_comparison")


def definitions(config: KmerlConfig) -> Definitions:
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
    def model_comparison(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
        """Macro AUROC of K-MERL, the MERL-style baseline (joint tokens, zero-filled
        leads, contrastive loss only, no lead masking), K-MERL without the knowledge
        loss and without lead masking, for every task, lead subset and method."""
        comparison = compare(
            storage.feature_store,
            storage.run_dir("comparison"),
            tasks_for_sources(config.sources),
            MiniLmEncoder(),
            model.training,
            model.evaluation,
            on_metrics=lambda m: (
                context.log.info(f"{m['variant']} epoch {m['epoch']}: loss {m['train_loss']:.4f}")
                if m["event"] == "epoch"
                else None
            ),
            on_progress=lambda progress: context.log.info(f"evaluation: {progress}"),
        )
        out = comparison.out_dir
        metadata: dict[str, object] = {
            "comparison": MetadataValue.md((out / "comparison.md").read_text()),
            "timings": MetadataValue.json(comparison.timings),
            "table": MetadataValue.path(str(out / "comparison.parquet")),
        }
        for png in sorted(out.glob("*.png")):
            metadata[f"plot/{png.stem}"] = png_markdown(png.read_bytes(), png.stem)
        rows = comparison.results.select("model", "task", "lead_subset", "method", "macro_auroc").rows()
        return MaterializeResult(metadata=metadata, data_version=DataVersion(stable_hash(rows)))

    return Definitions(assets=[model_comparison])
