"""Stage 5: zero-shot, linear-probe and partial-lead evaluation of the pretrained encoder."""

from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)

from assets.shared.automation import ON_UPSTREAM_OR_CODE_CHANGE
from assets.shared.keys import (
    ENCODER_EVALUATION,
    EXTERNAL_EVALUATION,
    FEATURE_STORE,
    KMERL_ENCODER,
    ROTATED_EVALUATION,
)
from assets.shared.metadata import MetadataDict, inline_chart, png_markdown
from assets.shared.partitions import COMPARISON_GROUP, PIPELINE_GROUP, evaluation_archive_partitions
from assets.shared.pools import GPU_POOL
from assets.shared.resources import StageProgress, StorageResource
from kmerl.config import KmerlConfig
from kmerl.extraction.store import KnowledgeStore
from kmerl.extraction.vocabulary import load_vocabulary
from kmerl.features import FeatureStore
from kmerl.hashing import stable_hash
from kmerl.inline_charts import AUROC_AXIS, AUROC_FLOOR, bar_chart, colour_legend
from kmerl.leads import LEAD_SUBSETS
from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation.archive import ArchiveError, evaluate_archive
from kmerl.model.evaluation.evaluate import (
    UNTRAINED,
    ZERO_SHOT_TEXT,
    Evaluation,
    evaluate_encoder,
    probe_method,
    read_evaluation,
)
from kmerl.model.evaluation.table import results_markdown, verdicts
from kmerl.model.evaluation.tasks import task_sources_identity, tasks_for_sources
from kmerl.model.experiments import MERL_BASELINE, train_reference
from kmerl.model.plots import partial_lead_chart, roc_curves
from kmerl.model.rotation import RotationInputs, rotate
from kmerl.model.runs import Metrics, RunManifest, RunStore
from kmerl.signals import SignalStore
from kmerl.sources.base import SourceRefused
from kmerl.text_encoder import MiniLmEncoder

MODEL_NAME = "kmerl"  # the trained encoder's rows; its untrained twin's are "untrained"
BESIDE_UNTRAINED = "scored_beside_untrained"


def build_assets(config: KmerlConfig) -> list[AssetsDefinition]:
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
    def encoder_evaluation(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Macro AUROC with bootstrap intervals on the held-out splits (PTB-XL fold 10;
        Challenge records by SNOMED class), for every lead subset: zero-shot by text
        prompt and by the query network, and linear probes on 1%, 10%, 100% of labels.
        The encoder is the run store's current run, on the feature store version it trained on."""
        runs = RunStore(storage.layout.runs)
        run = runs.current()
        features = FeatureStore.open(storage.layout.feature_store, run.feature_store_version)
        tasks = tasks_for_sources(config.sources)
        evaluation_key = stable_hash(settings, [task.model_dump(mode="json") for task in tasks], length=16)
        model_path = runs.model_file(run)
        out_dir = model_path.parent / f"evaluation-{evaluation_key}"
        if (out_dir / "results.parquet").exists():
            context.log.info(f"evaluation {out_dir} already written: reusing it")
            result = read_evaluation(out_dir)
        else:
            result = evaluate_encoder(
                model_path,
                features,
                tasks,
                MiniLmEncoder(),
                settings,
                out_dir=out_dir,
                on_progress=progress.reporter(context, "evaluate"),
                references=_references(context, storage, run, settings),
            )
        return MaterializeResult(
            metadata=_metadata(result, out_dir, max(settings.probe_fractions)),
            data_version=DataVersion(
                stable_hash(result.results.select("task", "lead_subset", "method", "macro_auroc").rows())
            ),
        )

    archives = [_external_evaluation(config)] if config.evaluation_archives else []
    return [encoder_evaluation, *archives, _rotated_evaluation(config)]


def _rotated_evaluation(config: KmerlConfig) -> AssetsDefinition:
    settings = config.model.evaluation

    @asset(
        key=ROTATED_EVALUATION,
        deps=[FEATURE_STORE],
        code_version=stable_hash(config.model.training, settings, task_sources_identity(config.sources), length=16),
        # One full pretraining per fold: run when asked (job rotate_folds), like the comparison.
        group_name=COMPARISON_GROUP,
        pool=GPU_POOL,
        kinds={"pytorch", "parquet"},
    )
    def rotated_evaluation(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """Every labelled record scored once: the records dealt into evaluation.rotation_folds
        folds, the encoder pretrained from scratch on all folds but one and scored on that one
        (zero-shot, probes fitted on the other folds' labels, the untrained twin beside it),
        the held-out scores pooled into one table over all records."""
        layout = storage.layout
        signals = SignalStore.open(layout.signal_store, sources=config.partition_keys, access="parquet")
        knowledge = KnowledgeStore(layout.knowledge_store)

        def on_metrics(metrics: Metrics) -> None:
            if metrics["event"] == "epoch":
                context.log.info(
                    f"rotation {metrics['rotation']} epoch {metrics['epoch']}: loss {metrics['train_loss']:.4f}"
                )

        inputs = RotationInputs(
            signals,
            knowledge.record_entities(config.partition_keys),
            load_vocabulary(config.extraction.vocabulary).frame(),
            tasks_for_sources(config.sources),
            MiniLmEncoder(),
        )
        pooled, out_dir = rotate(
            inputs,
            config.model.training,
            settings,
            layout.experiments / "rotation",
            settings.rotation_folds,
            on_metrics=on_metrics,
            on_progress=progress.reporter(context, "evaluate rotations"),
        )
        return MaterializeResult(
            metadata=_metadata(pooled, out_dir, max(settings.probe_fractions)),
            data_version=DataVersion(
                stable_hash(pooled.results.select("task", "lead_subset", "method", "macro_auroc").rows())
            ),
        )

    return rotated_evaluation


def _external_evaluation(config: KmerlConfig) -> AssetsDefinition:
    settings = config.model.evaluation

    @asset(
        key=EXTERNAL_EVALUATION,
        deps=[KMERL_ENCODER],
        partitions_def=evaluation_archive_partitions(config),
        # An archive's labels are read when it runs; its results folder is keyed by its
        # content, the encoder and these settings.
        code_version=stable_hash(settings, config.ingest, length=16),
        automation_condition=ON_UPSTREAM_OR_CODE_CHANGE,
        group_name=PIPELINE_GROUP,
        kinds={"pytorch", "parquet"},
        check_specs=[AssetCheckSpec(BESIDE_UNTRAINED, asset=EXTERNAL_EVALUATION)],
    )
    def external_evaluation(
        context: AssetExecutionContext, storage: StorageResource, progress: ResourceParam[StageProgress]
    ) -> MaterializeResult:
        """The current encoder on an archive it never saw, one partition per configured
        evaluation archive: the tables of encoder_evaluation on the archive's own labels,
        beside the untrained twin. The archive is ingested apart (<home>/evaluation/<name>),
        never extracted, never in the feature store, never trained on."""
        archive = config.evaluation_archive(context.partition_key)
        runs = RunStore(storage.layout.runs)
        try:
            run = runs.current()
            model_path = runs.model_file(run)
            result, out_dir = evaluate_archive(
                archive,
                model_path,
                config.home,
                MiniLmEncoder(),
                settings,
                config.ingest,
                on_progress=progress.reporter(context, "evaluate"),
                references=_references(context, storage, run, settings),
            )
        except (ArchiveError, SourceRefused, FileNotFoundError) as error:
            raise Failure(description=f"{archive.name}: {error}") from error
        lines = verdicts(result.differences.filter(pl.col("reference") == "untrained"))
        return MaterializeResult(
            metadata={**_metadata(result, out_dir, max(settings.probe_fractions)), "encoder": str(model_path)},
            data_version=DataVersion(
                stable_hash(result.results.select("task", "lead_subset", "method", "macro_auroc").rows())
            ),
            check_results=[
                AssetCheckResult(
                    check_name=BESIDE_UNTRAINED,
                    passed=bool(lines),
                    severity=AssetCheckSeverity.WARN,
                    description="Every score has the untrained twin's beside it, with a paired difference.",
                    metadata={"verdicts": MetadataValue.md("\n".join(f"- {line}" for line in lines) or "none")},
                )
            ],
        )

    return external_evaluation


def _references(
    context: AssetExecutionContext, storage: StorageResource, run: RunManifest, settings: EvaluationConfig
) -> dict[str, Path]:
    """The trained encoders scored beside ``run``'s: the MERL-style baseline when asked for,
    pretrained once on the same feature store version, budget and seed."""
    if not settings.merl_reference:
        return {}
    context.log.info("the MERL-style reference: same feature store, budget and seed (trained once, then reused)")
    path = train_reference(
        MERL_BASELINE,
        run.config,
        storage.layout.feature_store,
        storage.layout.comparison / "runs",  # shared with model_comparison's first seed
        run.feature_store_version,
    )
    return {MERL_BASELINE: path}


def _metadata(result: Evaluation, out_dir: Path, full_probe: float) -> MetadataDict:
    results = result.results
    methods = (ZERO_SHOT_TEXT, probe_method(full_probe))
    tasks = results["task"].unique(maintain_order=True).to_list()
    metadata: MetadataDict = {  # the charts drawn in place first: what the page opens on
        f"auroc_chart/{task}/{method}": _beside_untrained_chart(results, task, method)
        for task in tasks
        for method in methods
    }
    metadata |= {
        "results_table": MetadataValue.md(results_markdown(results, result.differences)),
        "results": MetadataValue.path(str(out_dir / "results.parquet")),
        "scored_combinations": results.height,  # model x task x lead subset x method rows in the table
    }
    for reference, key in (
        ("untrained", "above_untrained"),
        (MERL_BASELINE, "against_merl_baseline"),
        ("supervised", "against_supervised"),
    ):
        if lines := verdicts(result.differences.filter(pl.col("reference") == reference)):
            metadata[key] = MetadataValue.md("\n".join(f"- {line}" for line in lines))
    for task in tasks:
        all_leads = results.filter((pl.col("task") == task) & (pl.col("lead_subset") == "all12"))
        for row in all_leads.iter_rows(named=True):
            prefix = "" if row["model"] == MODEL_NAME else f"{row['model']}/"
            metadata[f"{prefix}{task}/{row['method']}/all12"] = round(float(row["macro_auroc"]), 3)
        for method in methods:
            metadata[f"partial_leads/{task}/{method}"] = png_markdown(
                partial_lead_chart(results, task, method), f"{task} {method} by lead subset"
            )
            rows = result.scores.filter(
                (pl.col("model") == MODEL_NAME)
                & (pl.col("task") == task)
                & (pl.col("method") == method)
                & (pl.col("lead_subset") == "all12")
            )
            if rows.height:
                metadata[f"roc/{task}/{method}"] = png_markdown(
                    roc_curves(rows, f"{task}, {method}, all 12 leads"), f"ROC {task} {method}"
                )
    return metadata


def _beside_untrained_chart(results: pl.DataFrame, task: str, method: str) -> MetadataValue:
    """Macro AUROC per lead subset, the encoder beside its untrained twin, drawn in place."""
    rows = results.filter((pl.col("task") == task) & (pl.col("method") == method))
    models = [model for model in (MODEL_NAME, UNTRAINED) if model in rows["model"]]
    subsets = [subset for subset in LEAD_SUBSETS if subset in rows["lead_subset"]]
    auroc = {(r["model"], r["lead_subset"]): r["macro_auroc"] for r in rows.iter_rows(named=True)}
    by_model = {model: [auroc.get((model, subset)) for subset in subsets] for model in models}
    svg = bar_chart(subsets, by_model, low=AUROC_FLOOR)
    return inline_chart(svg, f"{task}, {method}: macro AUROC by lead subset ({colour_legend(models)}; {AUROC_AXIS})")
