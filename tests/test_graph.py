"""The whole asset graph, materialized in process through a real (temporary) Dagster
instance on a slice of the sample data: per-source stages, then feature store,
pretraining launched through Pipes, evaluation, and the comparison with the
baseline and ablations."""

from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter, instance_for_test

from assets.shared.metadata import INLINE_MARKDOWN_LIMIT, metadata_values
from kmerl.config import KmerlConfig
from kmerl.extraction import ExtractionConfig
from kmerl.ingest import IngestConfig
from kmerl.model.config import ComparisonConfig, EvaluationConfig, ModelConfig, TrainConfig
from kmerl.model.evaluation.tasks import tasks_for_sources
from kmerl.sources import ChallengeSource, PtbXlSource
from pipeline.defs import build_definitions
from pipeline.defs.jobs import COMPARE_JOB, PER_SOURCE_JOB, ROTATE_JOB, TRAIN_JOB
from tests.webserver import ARTIFACTS, browser_page, dagster_webserver

pytestmark = pytest.mark.slow  # trains the default encoder, then four variants


def _metadata(result, node: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    (event,) = result.asset_materializations_for_node(node)
    return metadata_values(event.metadata)


@pytest.fixture(scope="module")
def instance() -> DagsterInstance:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> KmerlConfig:
    return KmerlConfig(
        home=tmp_path_factory.mktemp("graph"),
        sources=[
            PtbXlSource(name="ptbxl", root=shared_data / "ptbxl"),
            ChallengeSource(name="cinc2021", root=shared_data / "cinc2021"),
        ],
        ingest=IngestConfig(workers=1),
        extraction=ExtractionConfig(backend="lexicon"),
        model=ModelConfig(
            training=TrainConfig(epochs=1),
            evaluation=EvaluationConfig(bootstrap=20, rotation_folds=3),
            comparison=ComparisonConfig(seeds=(0, 1)),  # the mechanics of seeds; the default is three
        ),
    )


def test_the_whole_graph_materializes_with_plots_checks_and_versions(config: KmerlConfig, instance) -> None:  # type: ignore[no-untyped-def]
    defs = build_definitions(config)
    for partition in config.partition_keys:
        assert (
            defs.resolve_job_def(PER_SOURCE_JOB).execute_in_process(partition_key=partition, instance=instance).success
        )
    result = defs.resolve_job_def(TRAIN_JOB).execute_in_process(instance=instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"split_leakage": True}

    features = _metadata(result, "feature_store")
    assert features["dagster/row_count"] == 605 and features["entities"] > 100
    encoder = _metadata(result, "kmerl_encoder")
    assert encoder["epochs"] == 1 and Path(str(encoder["model_path"])).exists()
    assert encoder["feature_store_version"] == features["feature_store_version"]
    assert "data:image/png;base64," in str(encoder["loss_curves"])
    assert len(str(encoder["loss_chart"])) < INLINE_MARKDOWN_LIMIT
    evaluation = _metadata(result, "encoder_evaluation")
    assert "ptbxl_superclass" in str(evaluation["results_table"]) and "cinc2021_snomed" in str(
        evaluation["results_table"]
    )
    assert "data:image/png;base64," in str(evaluation["roc/ptbxl_superclass/zero_shot_text"])
    assert "data:image/png;base64," in str(evaluation["partial_leads/ptbxl_superclass/probe_100%"])
    assert 0.0 <= evaluation["ptbxl_superclass/zero_shot_text/all12"] <= 1.0


def test_unchanged_inputs_are_not_retrained(config: KmerlConfig, instance) -> None:  # type: ignore[no-untyped-def]
    """Run after the test above: the same feature store and configuration reuse the run."""
    model = Path(str(_metadata(_latest(instance), "kmerl_encoder")["model_path"]))
    before = model.stat().st_mtime_ns
    result = build_definitions(config).resolve_job_def(TRAIN_JOB).execute_in_process(instance=instance)
    assert result.success and model.stat().st_mtime_ns == before
    assert _metadata(result, "kmerl_encoder")["model_path"] == str(model)


def _latest(instance: DagsterInstance):  # type: ignore[no-untyped-def]
    (run,) = instance.get_runs(RunsFilter(job_name=TRAIN_JOB, statuses=[DagsterRunStatus.SUCCESS]), limit=1)
    return _RunResult(instance, run.run_id)


class _RunResult:
    """The materializations of a finished run, like an in-process result exposes them."""

    def __init__(self, instance: DagsterInstance, run_id: str) -> None:
        self._events = instance.all_logs(run_id)

    def asset_materializations_for_node(self, node: str) -> list:  # type: ignore[type-arg]
        return [
            e.asset_materialization
            for e in self._events
            if e.asset_materialization is not None and e.asset_materialization.asset_key.to_user_string() == node
        ]


def test_the_comparison_with_the_baseline_and_ablations(config: KmerlConfig, instance) -> None:  # type: ignore[no-untyped-def]
    result = build_definitions(config).resolve_job_def(COMPARE_JOB).execute_in_process(instance=instance)
    assert result.success
    comparison = _metadata(result, "model_comparison")
    table = str(comparison["comparison"])
    assert all(variant in table for variant in ("kmerl", "merl_baseline", "no_knowledge", "no_lead_masking"))
    assert set(comparison["timings"]) >= {"kmerl", "merl_baseline", "no_knowledge", "no_lead_masking"}
    assert "kmerl (seed 1)" in comparison["timings"]
    # Mean ± spread over the two seeds, and K-MERL's paired difference to each variant per seed.
    assert "Over seeds 0, 1" in table and " ± " in table
    assert "| ptbxl_superclass | all12 | zero_shot_text | merl_baseline |" in table
    differences = pl.read_parquet(Path(str(comparison["table"])).with_name("differences.parquet"))
    per_seed = differences.filter(pl.col("reference") == "merl_baseline").group_by("seed").len()
    assert sorted(per_seed["seed"]) == [0, 1]


def test_every_labelled_record_is_scored_once_over_rotated_folds(config: KmerlConfig, instance) -> None:  # type: ignore[no-untyped-def]
    result = build_definitions(config).resolve_job_def(ROTATE_JOB).execute_in_process(instance=instance)
    assert result.success
    rotated = _metadata(result, "rotated_evaluation")
    table = str(rotated["results_table"])
    # Every labelled PTB-XL record of the sample (not fold 10's 66) and every Challenge record with a class.
    n_test = {line.split(" | ")[0].strip("| "): int(line.split(" | ")[-2]) for line in table.splitlines()
              if "| all12 | probe_100% |" in line}  # fmt: skip
    assert n_test["ptbxl_superclass"] == 500
    assert "above untrained" in str(rotated["above_untrained"])
    assert len(list((config.home / "experiments" / "rotation").glob("rotation-*/run-*/model.pt"))) == 3


@pytest.mark.browser
def test_the_asset_pages_draw_the_key_charts_in_place(config: KmerlConfig, instance) -> None:  # type: ignore[no-untyped-def]
    """Run after the tests above: the webserver over their instance shows the loss and
    AUROC charts in the metadata table itself, with no "[Show Markdown]" click."""
    config_file = config.home / "kmerl.toml"
    config_file.write_text(_config_toml(config))
    ARTIFACTS.mkdir(exist_ok=True)
    drawn = {}
    with dagster_webserver(Path(instance.root_directory), config_file) as base:
        for asset, chart_key in (
            ("kmerl_encoder", "loss_chart"),
            ("encoder_evaluation", "auroc_chart/"),
            ("model_comparison", "auroc_chart/"),
            ("rotated_evaluation", "auroc_chart/"),
        ):
            with browser_page(base, f"/assets/{asset}") as page:
                chart = page.get_by_text(chart_key).first
                chart.wait_for(timeout=60_000)
                page.wait_for_load_state("networkidle")
                chart.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"{asset}.png"))
                drawn[asset] = page.eval_on_selector_all(
                    "img[src^='data:image/svg+xml']", "images => images.filter(i => i.naturalWidth > 0).length"
                )
    tasks = len(tasks_for_sources(config.sources))
    assert drawn == {
        "kmerl_encoder": 1,
        "encoder_evaluation": 2 * tasks,
        "model_comparison": tasks,
        "rotated_evaluation": 2 * tasks,
    }


def _config_toml(config: KmerlConfig) -> str:
    """The module's configuration as the webserver's code location reads it."""
    sources = "".join(
        f'\n[[sources]]\nkind = "{source.kind}"\nname = "{source.name}"\nroot = "{source.root}"\n'
        for source in config.sources
    )
    return f'home = "{config.home}"\n\n[extraction]\nbackend = "{config.extraction.backend}"\n{sources}'
