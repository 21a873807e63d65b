"""The configured extraction on report corpora: throughput on the 4,528 PTB-XL reports
and quality beside the lexicon, per split, by language and report kind, per entity.

    python -m bench.extraction_corpus [--home DIR] [--bootstrap 1000]

Runs what ``kmerl extract --corpus ptbxl_reports`` runs (default: the embedded model
in the in-process vLLM engine, the ``checklist`` prompt; ``KMERL_EXTRACTION__*``
settings apply) into an empty knowledge store, on the bundled ``ptbxl_reports`` corpus
and then on the 500 sample reports read as a corpus, and once more unchanged (no LLM
request expected). Throughput counts distinct reports (identical reports are
extracted once), the LLM requests per distinct report, and the share of distinct
reports the model is asked about at all (the rest have no candidate to judge).

Quality is scored on development (folds 1-7 of both, where the vocabulary, cues and
withheld kinds were tuned) and on validation (fold 8 of the reports; with the sample's
folds 8-10), each beside the lexicon on the same records with the paired difference,
also within every language and report kind of at least 50 records. Figures go to
``bench/out/extraction_corpus.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from bench.extraction import _machine
from kmerl.config import KmerlConfig
from kmerl.corpora import PtbXlReports
from kmerl.extraction import (
    BootstrapConfig,
    KnowledgeStore,
    LlmExtractor,
    describe_extractor,
    load_vocabulary,
    open_extractor,
    quality_markdown,
)
from kmerl.extraction.assessment import Assessment, assess, differences_markdown
from kmerl.extraction.corpus import CorpusExtraction, extract_corpus

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbxl" / "ptbxl_database.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="data directory (converted model; default: a temporary one)")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the sample's ptbxl_database.csv")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/extraction_corpus"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        config = KmerlConfig(home=(args.home or Path(scratch)).resolve())
        corpora = [config.corpus("ptbxl_reports"), PtbXlReports(name="ptbxl_sample", path=args.sample.resolve())]
        vocabulary = load_vocabulary(config.extraction.vocabulary)
        store = KnowledgeStore(Path(scratch) / "knowledge")  # empty: nothing cached from earlier runs
        provenance = describe_extractor(config.extraction, vocabulary)
        label = "lexicon" if provenance.extractor == "lexicon" else f"llm: {provenance.model}"
        results: dict[str, object] = {"machine": _machine(), "extractor": provenance.model_dump(mode="json")}
        runs: dict[str, dict[str, object]] = {}

        started = time.monotonic()
        with open_extractor(config.extraction, config.home, vocabulary) as extractor:
            if isinstance(extractor, LlmExtractor):
                extractor.backend.count_tokens("ECG")  # starts the engine, so its start is timed apart
            results["engine_start_s"] = round(time.monotonic() - started, 1)
            for corpus in corpora:
                result = extract_corpus(
                    corpus, extractor, store, vocabulary, name=label, compare_with_lexicon=False
                )  # fmt: skip
                runs[corpus.name] = _throughput(result, store)
                print(f"{corpus.name}: {runs[corpus.name]}", flush=True)
            again = extract_corpus(corpora[0], extractor, store, vocabulary, name=label, compare_with_lexicon=False)
            runs[f"{corpora[0].name}, unchanged"] = _throughput(again, store)

        version = again.run.knowledge_version
        bootstrap = BootstrapConfig(resamples=args.bootstrap)
        records = {corpus.name: _records(store, corpus.name, version) for corpus in corpora}
        assessments = {
            "ptbxl_reports (validation: fold 8)": assess(
                store, records["ptbxl_reports"], version, vocabulary, name=label, bootstrap=bootstrap
            ),
            "ptbxl_reports + sample (validation: fold 8 + the sample's folds 8-10)": assess(
                store, pl.concat(records.values()), version, vocabulary, name=label, bootstrap=bootstrap
            ),
        }
    results["runs"] = runs
    results["quality"] = {
        name: {
            "reports": [{"extractor": r.name, "split": r.split, **r.summary} for r in a.reports],
            "differences": a.differences,
        }
        for name, a in assessments.items()
    }
    markdown = _markdown(results, assessments)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


def _records(store: KnowledgeStore, corpus: str, version: str) -> pl.DataFrame:
    """The corpus's records with their report texts, as ``assess`` reads them."""
    texts = store.table("reports", version).select("report_key", report="report_text").unique("report_key")
    return store.records([corpus]).join(texts, on="report_key")


def _throughput(result: CorpusExtraction, store: KnowledgeStore) -> dict[str, object]:
    run = result.run
    corpus_keys = pl.DataFrame({"report_key": sorted(set(run.report_keys))})
    attempts = (
        store.table("reports", run.knowledge_version)
        .select("report_key", "attempts")
        .unique("report_key")
        .join(corpus_keys, on="report_key")
    )
    decided = (
        store.table("mentions", run.knowledge_version)
        .join(corpus_keys, on="report_key")
        .group_by("decided_by")
        .len()
        .sort("decided_by")
    )
    return {
        "knowledge_version": run.knowledge_version,
        "rows": result.rows.rows_in,
        "records": result.rows.records.height,
        "distinct": run.unique,
        "extracted": run.extracted,
        "cached": run.cached,
        "quarantined": run.quarantined,
        "seconds": round(run.elapsed_s, 1),
        "distinct_per_s": round(run.extracted / run.elapsed_s, 2) if run.extracted else None,
        "llm_requests": run.llm_requests,
        "requests_per_distinct": round(run.llm_requests / run.unique, 2),
        "share_asked": round(float((attempts["attempts"] > 0).mean() or 0.0), 3),
        "finish_reasons": run.finish_reasons,
        "mentions_decided_by": dict(decided.iter_rows()),  # lexicon alone, both (the model agreed), llm (added)
    }


def _markdown(results: dict, assessments: dict[str, Assessment]) -> str:
    lines = [
        f"Engine start: {results['engine_start_s']} s (not counted below).",
        "",
        "| run | rows | distinct reports | extracted | cached | quarantined | s | distinct reports/s "
        "| LLM requests | requests per distinct report | share of distinct reports asked | finish reasons "
        "| mentions decided by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in results["runs"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in r["finish_reasons"].items()) or "-"
        decided = ", ".join(f"{k}: {v}" for k, v in r["mentions_decided_by"].items())
        lines.append(
            f"| {name} | {r['rows']} | {r['distinct']} | {r['extracted']} | {r['cached']} | {r['quarantined']} "
            f"| {r['seconds']} | {r['distinct_per_s'] or '-'} | {r['llm_requests']} | {r['requests_per_distinct']} "
            f"| {r['share_asked']:.1%} | {reasons} | {decided} |"
        )
    for name, assessment in assessments.items():
        lines += ["", f"### {name}", "", quality_markdown(assessment.reports), differences_markdown(assessment)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
