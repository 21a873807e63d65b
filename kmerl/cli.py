"""Command line for using the library without Dagster.

::

    kmerl ingest  [--source NAME]...     WFDB sources -> the signal store
    kmerl extract [--corpus NAME]...     report corpora -> the knowledge store, scored
    kmerl quality [--corpus NAME]...     the quality tables and vocabulary gaps, no extraction
    kmerl calibrate [--corpus NAME]...   the kinds of mention development labels contradict (--write)
    kmerl audit   [-c SQL]               a SQL shell on the knowledge store that cannot change it
    kmerl evaluate ROOT [--kind K]       the trained encoder on an archive it never saw
    kmerl export OUT [--encoder PATH]    the trained encoder as safetensors + config + model card
    kmerl home    [NAME]                 where the configured home keeps each store, cache and log

Settings come from the configuration (``KMERL_CONFIG``, ``KMERL_*`` variables);
``--backend lexicon`` runs the rules alone.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import duckdb
import polars as pl
from pydantic import ValidationError

from kmerl.config import KmerlConfig
from kmerl.corpora import CorpusError, PtbXlReports, ReportTable, read_corpus
from kmerl.extraction import (
    KnowledgeStore,
    describe_extractor,
    load_vocabulary,
    open_audit,
    open_extractor,
    quality_markdown,
)
from kmerl.extraction.assessment import Assessment, assess, differences_markdown
from kmerl.extraction.calibration import CalibrationConfig, CalibrationError, fit_withheld, write_withheld
from kmerl.extraction.corpus import extract_corpus
from kmerl.extraction.gaps import gaps_markdown
from kmerl.ingest import ingest_source
from kmerl.model.runs import RunStore
from kmerl.progress import Progress
from kmerl.sources.base import SourceRefused

log = logging.getLogger("kmerl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kmerl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="ingest configured sources into the signal store")
    ingest.add_argument("--source", action="append", help="source name (repeatable; default: all configured)")
    for name, help_text in (
        ("extract", "extract and score report corpora (configured, or --file)"),
        ("quality", "print quality tables and vocabulary gaps of what was extracted"),
    ):
        command = _with_corpus_arguments(commands.add_parser(name, help=help_text))
        command.add_argument("--backend", choices=["lexicon", "vllm", "server"], help="override the configured backend")
        command.add_argument("--gaps", type=int, default=25, help="vocabulary-gap rows to print")
    calibrate = _with_corpus_arguments(
        commands.add_parser("calibrate", help="fit the kinds of mention the vocabulary withholds (development split)")
    )
    calibrate.add_argument("--min-mentions", type=int, default=CalibrationConfig().min_mentions)
    calibrate.add_argument("--write", action="store_true", help="write them into the configured vocabulary file")
    audit = commands.add_parser("audit", help="SQL on every knowledge version (read-only; see kmerl.extraction.audit)")
    audit.add_argument("-c", "--command", dest="sql", help="run these statements and exit (default: a shell)")
    evaluate = commands.add_parser("evaluate", help="evaluate the trained encoder on an archive it never saw")
    evaluate.add_argument("root", type=Path, help="the archive's folder")
    evaluate.add_argument("--kind", choices=["physionet_challenge", "ptbxl"], default="physionet_challenge")
    evaluate.add_argument("--name", help="a name for the archive (default: its folder's)")
    evaluate.add_argument("--label-map", type=Path, help="CSV label,snomed_code for # Dx entries the dx mapping lacks")
    evaluate.add_argument("--quarantine-unmapped", action="store_true", help="quarantine records with unmapped labels")
    evaluate.add_argument(
        "--folds", type=int, help="probes out of fold over this many folds, every record scored (default: configured)"
    )
    evaluate.add_argument(
        "--test-fraction", type=float, default=0.5, help="Challenge with --folds 0: share scored; the rest fit probes"
    )
    evaluate.add_argument("--encoder", type=Path, help="model.pt of a training run (default: the latest run)")
    evaluate.add_argument("--bootstrap", type=int, help="bootstrap resamples (default: the configured number)")
    export = commands.add_parser("export", help="write the trained encoder as safetensors, config and model card")
    export.add_argument("out", type=Path, help="folder to write model.safetensors, config.json and README.md to")
    export.add_argument("--encoder", type=Path, help="model.pt of a training run (default: the latest run)")
    home = commands.add_parser("home", help="print where the configured home keeps each store, cache and log")
    home.add_argument("name", nargs="?", help="one path by name (e.g. dagster), printed alone")
    args = parser.parse_args(argv)
    config = KmerlConfig()
    if args.command == "home":
        return _print_home(config, args.name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "ingest":
        return _ingest(config, args.source)
    if args.command == "audit":
        return _audit(config, args.sql)
    if args.command == "evaluate":
        return _evaluate(config, args)
    if args.command == "export":
        return _export(config, args.out, args.encoder)
    if getattr(args, "backend", None):
        config = config.model_copy(
            update={"extraction": config.extraction.model_copy(update={"backend": args.backend})}
        )
    try:
        corpora = _corpora(config, args)
        if args.command == "calibrate":
            return _calibrate(config, corpora, CalibrationConfig(min_mentions=args.min_mentions), args.write)
        if args.command == "extract":
            return _extract(config, corpora, args.gaps)
        return _quality(config, corpora, args.gaps)
    except (CorpusError, CalibrationError, KeyError) as error:
        print(f"kmerl {args.command}: {error}", file=sys.stderr)
        return 2


def _with_corpus_arguments(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--corpus", action="append", help="corpus name (repeatable; default: all configured)")
    command.add_argument("--file", type=Path, help="a corpus not in the configuration: a CSV or Parquet file")
    command.add_argument("--kind", choices=["ptbxl_reports", "report_table"], default="report_table")
    command.add_argument("--name", default="adhoc", help="corpus name for --file")
    return command


def _calibrate(
    config: KmerlConfig, corpora: list[PtbXlReports | ReportTable], calibration: CalibrationConfig, write: bool
) -> int:
    """The kinds of mention the corpora's development records contradict, printed; written on request."""
    vocabulary = load_vocabulary(config.extraction.vocabulary)
    records = pl.concat([read_corpus(corpus).records for corpus in corpora])
    withheld = fit_withheld(records, vocabulary, calibration)
    print("| entity | status | machine report | term | development mentions | precision |\n|---|---|---|---|---:|---:|")
    for c in withheld:
        machine = "yes" if c.machine_report else "no"
        term = c.term or "any"
        print(f"| {c.entity_id} | {c.status} | {machine} | {term} | {c.mentions} | {c.precision:.3f} |")
    if write:
        write_withheld(config.extraction.vocabulary, withheld)
        print(f"{len(withheld)} kinds written to {config.extraction.vocabulary}")
    return 0


def _print_home(config: KmerlConfig, name: str | None) -> int:
    paths = config.layout.paths()
    if name is None:
        print("\n".join(f"{key:16} {path}" for key, path in paths.items()))
        return 0
    if name not in paths:
        print(f"no path named {name!r}; known: {', '.join(paths)}", file=sys.stderr)
        return 2
    print(paths[name])
    return 0


def _ingest(config: KmerlConfig, names: list[str] | None) -> int:
    partitions = [
        (config.source(name), key)
        for name in names or [source.name for source in config.sources]
        for key in config.source(name).partition_keys()
    ]
    for source, partition in partitions:

        def report(progress: Progress, partition: str = partition) -> None:
            log.info("%s: %s", partition, progress)

        try:
            manifest = ingest_source(
                source, config.layout.signal_store, config.ingest, on_progress=report, partition=partition
            )
        except SourceRefused as error:
            print(f"kmerl ingest: {error}", file=sys.stderr)
            return 2
        reasons = ", ".join(f"{reason}: {count}" for reason, count in manifest.quarantine_reasons.items())
        print(
            f"{partition}: {manifest.records_in} records -> {manifest.ingested} ingested, "
            f"{manifest.quarantined} quarantined{f' ({reasons})' if reasons else ''}; version {manifest.version}"
        )
    return 0


def _evaluate(config: KmerlConfig, args: argparse.Namespace) -> int:
    """Ingest the archive apart from the pipeline, score the encoder on it, print the table."""
    from kmerl.model.evaluation.archive import ArchiveError, evaluate_archive
    from kmerl.model.evaluation.table import results_markdown
    from kmerl.sources import ChallengeSource, PtbXlSource
    from kmerl.text_encoder import MiniLmEncoder

    name = args.name or re.sub(r"[^a-z0-9_]+", "_", args.root.resolve().name.lower()).strip("_") or "archive"
    source: ChallengeSource | PtbXlSource
    if args.kind == "ptbxl":
        source = PtbXlSource(name=name, root=args.root)
    else:
        source = ChallengeSource(
            name=name,
            root=args.root,
            label_map=args.label_map,
            unmapped_labels="quarantine" if args.quarantine_unmapped else "error",
            val_fraction=0.0,
            test_fraction=args.test_fraction,
        )
    settings = config.model.evaluation
    overrides = {"bootstrap": args.bootstrap, "archive_folds": args.folds}
    try:
        settings = settings.model_validate(
            settings.model_dump() | {key: value for key, value in overrides.items() if value is not None}
        )
    except ValidationError as error:
        print(f"kmerl evaluate: {error}", file=sys.stderr)
        return 2
    try:
        model_path = args.encoder or _latest_encoder(RunStore(config.layout.runs))

        def report(progress: Progress) -> None:
            log.info("%s: %s", name, progress)

        evaluation, out_dir = evaluate_archive(
            source, model_path, config.home, MiniLmEncoder(), settings, config.ingest, on_progress=report
        )
    except (ArchiveError, SourceRefused) as error:
        print(f"kmerl evaluate: {error}", file=sys.stderr)
        return 2
    print(results_markdown(evaluation.results, evaluation.differences, settings.confidence))
    print(f"encoder {model_path}; tables, scores and differences in {out_dir}")
    return 0


def _export(config: KmerlConfig, out: Path, encoder: Path | None) -> int:
    from kmerl.model.evaluation.archive import ArchiveError
    from kmerl.model.export import export_encoder

    try:
        model_path = encoder or _latest_encoder(RunStore(config.layout.runs))
        export_encoder(model_path, out)
    except ArchiveError as error:
        print(f"kmerl export: {error}", file=sys.stderr)
        return 2
    print(f"{model_path} -> {out}: model.safetensors, config.json, README.md")
    return 0


def _latest_encoder(runs: RunStore) -> Path:
    from kmerl.model.evaluation.archive import ArchiveError

    try:
        return runs.model_file(runs.current())
    except FileNotFoundError as error:
        raise ArchiveError(f"{error}: run `make run` first, or pass --encoder") from error


def _audit(config: KmerlConfig, sql: str | None) -> int:
    with open_audit(KnowledgeStore(config.layout.knowledge_store)) as connection:
        if sql is not None:
            return _run_statements(connection, sql)
        views = [row[0] for row in connection.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT starts_with(view_name, '_') ORDER BY 1"
        ).fetchall()]  # fmt: skip
        print(f"kmerl audit: {config.layout.knowledge_store} (read-only). Views: {', '.join(views)}.")
        print("End each statement with ;")
        pending: list[str] = []
        while True:
            try:
                line = input("audit> " if not pending else "  ...> ")
            except EOFError:
                print()
                return _run_statements(connection, "\n".join(pending)) if pending else 0
            pending.append(line)
            if line.rstrip().endswith(";"):
                _run_statements(connection, "\n".join(pending))
                pending = []


def _run_statements(connection: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Each statement's result as a table; an error is printed, not raised (a shell goes on)."""
    status = 0
    for statement in (part.strip() for part in sql.split(";")):
        if not statement:
            continue
        try:
            relation = connection.sql(statement)
            if relation is not None:
                relation.show(max_width=200, max_rows=50)
        except duckdb.Error as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
    return status


def _corpora(config: KmerlConfig, args: argparse.Namespace) -> list[PtbXlReports | ReportTable]:
    if args.file is not None:
        kind = PtbXlReports if args.kind == "ptbxl_reports" else ReportTable
        return [kind(name=args.name, path=args.file.expanduser().resolve())]
    return [config.corpus(name) for name in args.corpus or [corpus.name for corpus in config.corpora]]


def _extract(config: KmerlConfig, corpora: list[PtbXlReports | ReportTable], gaps: int) -> int:
    vocabulary = load_vocabulary(config.extraction.vocabulary)
    store = KnowledgeStore(config.layout.knowledge_store)
    label = _extractor_label(config)
    with open_extractor(config.extraction, config.home, vocabulary) as extractor:
        for corpus in corpora:

            def report(progress: Progress, name: str = corpus.name) -> None:
                log.info("%s: %s", name, progress)

            result = extract_corpus(
                corpus, extractor, store, vocabulary,
                name=label,
                compare_with_lexicon=config.extraction.compare_with_lexicon,
                on_progress=report,
            )  # fmt: skip
            run, rows = result.run, result.rows
            reasons = rows.rejected.group_by("reason").len().rows()
            print(
                f"{corpus.name}: {rows.rows_in} rows -> {rows.records.height} records "
                f"({rows.rejected.height} rejected{''.join(f', {r}: {n}' for r, n in reasons)}); "
                f"{run.unique} distinct reports -> {run.extracted} extracted, {run.cached} cached, "
                f"{run.quarantined} quarantined; {run.llm_requests} LLM requests in {run.elapsed_s:.1f} s; "
                f"version {run.knowledge_version}"
            )
            _print_assessment(corpus.name, result.assessment, store, gaps)
    return 0


def _quality(config: KmerlConfig, corpora: list[PtbXlReports | ReportTable], gaps: int) -> int:
    """The tables of each corpus's current knowledge (what `kmerl extract` last published)."""
    vocabulary = load_vocabulary(config.extraction.vocabulary)
    store = KnowledgeStore(config.layout.knowledge_store)
    for corpus in corpora:
        try:
            version = store.current(corpus.name).knowledge_version
        except FileNotFoundError as error:
            print(f"kmerl quality: {error}", file=sys.stderr)
            return 2
        texts = store.table("reports", version).select("report_key", report="report_text").unique("report_key")
        provenance = store.provenance(version)
        assessment = assess(
            store, store.records([corpus.name]).join(texts, on="report_key"), version, vocabulary,
            name="lexicon" if provenance.extractor == "lexicon" else f"llm: {provenance.model}",
            compare_with_lexicon=config.extraction.compare_with_lexicon,
        )  # fmt: skip
        _print_assessment(corpus.name, assessment, store, gaps)
    return 0


def _print_assessment(corpus: str, assessment: Assessment, store: KnowledgeStore, gaps: int) -> None:
    if assessment.scored:
        markdown = quality_markdown(assessment.reports)
        if assessment.differences:
            markdown += "\n" + differences_markdown(assessment)
        path = store.root / "quality" / f"{corpus}-{assessment.knowledge_version}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown)
        print(f"\n{markdown}\n(written to {path})")
    if gaps and not assessment.gaps.is_empty():
        print(f"\nVocabulary gaps ({corpus}, records not in validation):\n{gaps_markdown(assessment.gaps, gaps)}")


def _extractor_label(config: KmerlConfig) -> str:
    provenance = describe_extractor(config.extraction)
    return "lexicon" if provenance.extractor == "lexicon" else f"llm: {provenance.model}"


if __name__ == "__main__":
    sys.exit(main())
