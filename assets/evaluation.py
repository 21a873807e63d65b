"""Stage 5: zero-shot, linear-probe and partial-lead evaluation of the pretrained encoder."""

from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DataVersion,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.features import FEATURE_STORE
from assets.training import KMERL_ENCODER
from kmerl.config import KmerlConfig
from kmerl.features import FeatureStore
from kmerl.hashing import stable_hash
from kmerl.model.evaluation.evaluate import ZERO_SHOT_TEXT, Evaluation, evaluate, probe_method, read_evaluation
from kmerl.model.evaluation.table import results_markdown
from kmerl.model.evaluation.tasks import task_sources_identity, tasks_for_sources
from kmerl.model.plots import partial_lead_chart, roc_curves
from kmerl.text_encoder import MiniLmEncoder
from pipeline.automation import ON_UPSTREAM_OR_CODE_CHANGE
from pipeline.metadata import png_markdown
from pipeline.partitions import PIPELINE_GROUP
from pipeline.resources import StorageResource

ENCODER_EVALUATION = AssetKey("encoder_evaluation")


def definitions(config: KmerlConfig) -> Definitions:
    settings = config.model.evaluation

    @asset(
        key=ENCODER_EVALUATION,
        deps=[KMERL_ENCODER, FEATURE_STORE],
        # Label tables are read when the asset runs, not when the code location loads
        # (a webserver need not mount the archives); their content keys the output folder.
        code_version=stable_hash(settings, task_sources_identity(config.sources), length=16),
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        kinds={"pytorch", "parquet"},
    )
    def encoder_evaluation(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
        """Macro AUROC with bootstrap intervals on the held-out splits (PTB-XL fold 10;
        Challenge records by SNOMED class), for every lead subset: zero-shot by text
        prompt and by the query network, and linear probes on 1%, 10%, 100% of labels."""
        features = FeatureStore.open(storage.feature_store)
        tasks = tasks_for_sources(config.sources)
        evaluation_key = stable_hash(settings, [task.model_dump(mode="json") for task in tasks], length=16)
        model_path = _latest_model(context)
        out_dir = model_path.parent / f"evaluation-{evaluation_key}"
        if (out_dir / "results.parquet").exists():
            context.log.info(f"evaluation {out_dir} already written: reusing it")
            result = read_evaluation(out_dir)
        else:
            result = evaluate(
                model_path,
                features,
                tasks,
                MiniLmEncoder(),
                settings,
                out_dir=out_dir,
                on_progress=lambda progress: context.log.info(f"evaluation: {progress}"),
            )
        return MaterializeResult(
            metadata=_metadata(result, out_dir, max(settings.probe_fractions)),
            data_version=DataVersion(
                stable_hash(result.results.select("task", "lead_subset", "method", "macro_auroc").rows())
            ),
        )

    return Definitions(assets=[encoder_evaluation])


def _latest_model(context: AssetExecutionContext) -> Path:
    """The weights the latest kmerl_encoder materialization produced."""
    records = context.instance.fetch_materializations(AssetRecordsFilter(asset_key=KMERL_ENCODER), limit=1).records
    if not records:
        raise RuntimeError("kmerl_encoder has not been materialized yet")
    return Path(records[0].asset_materialization.metadata["model_path"].value)  # type: ignore[union-attr]


def _metadata(result: Evaluation, out_dir: Path, full_probe: float) -> dict[str, object]:
    results = result.results
    metadata: dict[str, object] = {
        "results_table": MetadataValue.md(results_markdown(results)),
        "results": MetadataValue.path(str(out_dir / "results.parquet")),
        "settings": results.height,
    }
    for task in results["task"].unique(maintain_order=True):
        all_leads = results.filter((pl.col("task") == task) & (pl.col("lead_subset") == "all12"))
        for row in all_leads.iter_rows(named=True):
            metadata[f"{task}/{row['method']}/all12"] = float(row["macro_auroc"])
        for method in (ZERO_SHOT_TEXT, probe_method(full_probe)):
            metadata[f"partial_leads/{task}/{method}"] = png_markdown(
                partial_lead_chart(results, task, method), f"{task} {method} by lead subset"
            )
            rows = result.scores.filter(
                (pl.col("task") == task) & (pl.col("method") == method) & (pl.col("lead_subset") == "all12")
            )
            if rows.height:
                metadata[f"roc/{task}/{method}"] = png_markdown(
                    roc_curves(rows, f"{task}, {method}, all 12 leads"), f"ROC {task} {method}"
                )
    return metadata
