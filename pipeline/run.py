"""The main run, end to end, through the Dagster instance (``make run``).

Runs are recorded in ``$DAGSTER_HOME`` (default ``<home>/dagster``), so the UI
started with ``make ui`` shows them, and a second run reuses everything unchanged.
The terminal shows one progress bar per stage and a closing summary; every log
line of the run goes to ``<home>/logs/run-<time>.log`` and to Dagster.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assets.shared.metadata import metadata_values
from assets.shared.resources import StageProgress
from kmerl.config import KmerlConfig
from kmerl.console import StageBars, console
from kmerl.progress import Progress, ProgressCallback
from pipeline.instance import fail_orphaned_runs, prepare_instance, process_tags

if TYPE_CHECKING:
    from dagster import AssetExecutionContext, DagsterInstance, ExecuteInProcessResult, LoggerDefinition


# The run's Dagster logger: naming it in the run config puts it in place of the console logger.
RUN_LOG = "run_log"
LOG_TO_FILE: dict[str, dict[str, dict[str, object]]] = {"loggers": {RUN_LOG: {}}}


class ConsoleProgress(StageProgress):
    """Log lines as usual, and a terminal bar per stage."""

    def __init__(self, bars: StageBars) -> None:
        self._bars = bars

    def reporter(self, context: AssetExecutionContext, label: str, *, log: bool = True) -> ProgressCallback:
        logged = super().reporter(context, label, log=log)
        bar = self._bars.stage(label)

        def report(progress: Progress) -> None:
            logged(progress)
            bar(progress)

        return report


def main() -> int:
    config = KmerlConfig()
    layout = config.layout
    os.environ.setdefault("DAGSTER_HOME", str(layout.dagster))
    # The engine's configuration dump each time a partition starts it, and the model
    # loaders' own bars, would break the progress bars; warnings and errors still show.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    prepare_instance(Path(os.environ["DAGSTER_HOME"]))
    log_file = layout.logs / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
    handler = _log_to(log_file)

    from dagster import DagsterInstance

    from pipeline.defs import build_definitions
    from pipeline.defs.jobs import PER_SOURCE_JOB, TRAIN_JOB

    out = console()
    sources = ", ".join(config.partition_keys)
    out.print(f"kmerl: {sources}; extraction by {config.extraction.backend}; log {log_file}")
    instance = DagsterInstance.get()
    if orphaned := fail_orphaned_runs(instance):
        out.print(f"marked failed {len(orphaned)} runs left started by a killed main run")
    _record_observations(instance, config)
    per_source: list[ExecuteInProcessResult] = []
    training: ExecuteInProcessResult | None = None
    with StageBars() as bars:
        defs = build_definitions(config, ConsoleProgress(bars), loggers={RUN_LOG: _dagster_logger(handler)})
        for partition in config.partition_keys:
            per_source.append(
                defs.resolve_job_def(PER_SOURCE_JOB).execute_in_process(
                    partition_key=partition,
                    instance=instance,
                    raise_on_error=False,
                    run_config=LOG_TO_FILE,
                    tags=process_tags(),
                )
            )
        if all(result.success for result in per_source):
            training = defs.resolve_job_def(TRAIN_JOB).execute_in_process(
                instance=instance, raise_on_error=False, run_config=LOG_TO_FILE, tags=process_tags()
            )
    for partition, result in zip(config.partition_keys, per_source, strict=True):
        out.print(_source_summary(partition, result) if result.success else _failure(partition, result))
    if training is None:
        out.print(f"[red]training skipped: a partition failed[/red]; see {log_file} or make ui")
        return 1
    if not training.success:
        out.print(_failure(TRAIN_JOB, training))
        return 1
    _print_training(out, training)
    out.print(f"log {log_file}; every run, plot and check: make ui")
    return 0


def _record_observations(instance: DagsterInstance, config: KmerlConfig) -> None:
    """What the sensors would observe, recorded before the run materializes from it, so
    the daemon's first look at the same archives and prompt is not an update."""
    from pipeline.defs.sensors import archive_observations, prompt_observation, unrecorded

    observed = [observation for source in config.sources for observation in archive_observations(source)]
    for observation in unrecorded(instance, [*observed, prompt_observation(config)]):
        instance.report_runless_asset_event(observation)


def _log_to(path: Path) -> logging.Handler:
    """The library's log records (INFO and up), other libraries' warnings and Python
    warnings go to the run's log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("kmerl").setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler


def _dagster_logger(handler: logging.Handler) -> LoggerDefinition:
    """Dagster's log lines for the run's log file, in place of its console logger."""
    from dagster import InitLoggerContext, LoggerDefinition

    def to_file(_: InitLoggerContext) -> logging.Logger:
        # A logger outside the logging tree, as Dagster's own console logger is: no propagation.
        # DEBUG, as that logger: every event of the run, step starts and outputs included.
        run_logger = logging.Logger("dagster", level=logging.DEBUG)
        run_logger.addHandler(handler)
        return run_logger

    return LoggerDefinition(to_file, description="Every Dagster log line of the main run, into its log file.")


def _metadata(result: ExecuteInProcessResult, node: str) -> dict[str, object]:
    (materialization,) = result.asset_materializations_for_node(node)
    return metadata_values(materialization.metadata)


def _source_summary(partition: str, result: ExecuteInProcessResult) -> str:
    signals = _metadata(result, "ecg_signals")
    knowledge = _metadata(result, "report_knowledge")
    return (
        f"{partition}: {signals['records_in']} records -> {signals['dagster/row_count']} ingested, "
        f"{signals['quarantined']} quarantined; {knowledge['distinct_reports']} distinct reports -> "
        f"{knowledge['extracted']} extracted, {knowledge['cached']} cached, {knowledge['quarantined']} quarantined "
        f"({knowledge['llm_requests']} LLM requests, {knowledge['model']})"
    )


def _failure(name: str, result: ExecuteInProcessResult) -> str:
    """Which step failed and the first line of why; the log file and the UI have the rest."""
    failures = [
        f"{event.step_key}: {error.message.strip().splitlines()[0] if error else 'failed'}"
        for event in result.get_step_failure_events()
        for error in [event.step_failure_data.error]
    ]
    return f"[red]{name} failed[/red] (run {result.run_id}): {escape('; '.join(failures)) or 'see the log'}"


def _print_training(out: Console, result: ExecuteInProcessResult) -> None:
    features = _metadata(result, "feature_store")
    encoder = _metadata(result, "kmerl_encoder")
    evaluation = _metadata(result, "encoder_evaluation")
    losses = ", ".join(
        f"{name} {value:.3f}" for name in ("train_loss", "val_loss") if isinstance(value := encoder.get(name), float)
    )
    out.print(
        f"feature store {features['feature_store_version']}: {features['dagster/row_count']} rows, "
        f"{features['entities']} entities"
    )
    out.print(f"encoder {encoder['run_key']}: {encoder['epochs']} epochs, {losses}; {encoder['model_path']}")
    table = Table(title="macro AUROC, all 12 leads, trained (untrained weights); intervals: results.md beside results")
    table.add_column("task")
    rows: dict[str, dict[str, float]] = {}
    untrained: dict[str, dict[str, float]] = {}
    for key, value in evaluation.items():
        parts = key.split("/")
        if parts[-1] != "all12" or not isinstance(value, float):
            continue
        if len(parts) == 3:
            rows.setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 4 and parts[0] == "untrained":
            untrained.setdefault(parts[1], {})[parts[2]] = value
    methods = list(dict.fromkeys(method for scores in rows.values() for method in scores))
    for method in methods:
        table.add_column(method, justify="right")
    for task, scores in rows.items():
        reference = untrained.get(task, {})
        table.add_row(
            task,
            *(
                f"{scores[m]:.3f}" + (f" ({reference[m]:.3f})" if m in reference else "") if m in scores else "n/a"
                for m in methods
            ),
        )
    out.print(table)
    for line in str(evaluation.get("above_untrained", "")).splitlines():
        out.print(escape(line.removeprefix("- ")))
    out.print(f"results {evaluation['results']}")


if __name__ == "__main__":
    sys.exit(main())
