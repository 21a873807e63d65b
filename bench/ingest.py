"""Ingest benchmarks: throughput against plain ``wfdb.rdsamp``, memory against N, and
random-access read speed of the store. Every ratio compares runs made in this process,
on the same records, one after the other.

    python -m bench.ingest [--records 5000] [--scaling-records 20000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import wfdb

from kmerl.ingest import IngestConfig, ingest_source
from kmerl.signals import SignalStore
from kmerl.sources import WfdbFolderSource

SHARED_PTBXL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbxl"


def build_scale_set(originals: list[Path], count: int, folder: Path) -> list[Path]:
    """``count`` WFDB records copied from ``originals`` under new record names."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    records = []
    for index in range(count):
        source = originals[index % len(originals)]
        name = f"r{index:06d}"
        header = source.with_suffix(".hea").read_text().replace(source.name, name)
        (folder / f"{name}.hea").write_text(header)
        shutil.copyfile(source.with_suffix(".dat"), folder / f"{name}.dat")
        records.append(folder / name)
    return records


def time_rdsamp(records: list[Path]) -> float:
    """Seconds for the plain baseline: read every record with wfdb.rdsamp, nothing else."""
    started = time.perf_counter()
    for record in records:
        wfdb.rdsamp(str(record))
    return time.perf_counter() - started


def time_ingest(folder: Path, store: Path, workers: int) -> float:
    if store.exists():
        shutil.rmtree(store)
    started = time.perf_counter()
    ingest_source(WfdbFolderSource(name="scale", root=folder), store, IngestConfig(workers=workers))
    return time.perf_counter() - started


def peak_rss_mib(folder: Path, store: Path) -> float:
    """Peak RSS of the largest process of a fresh one-worker ingest run in a subprocess."""
    if store.exists():
        shutil.rmtree(store)
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        from kmerl.ingest import IngestConfig, ingest_source
        from kmerl.sources import WfdbFolderSource
        if __name__ == "__main__":
            source = WfdbFolderSource(name="scale", root=Path({str(folder)!r}))
            ingest_source(source, Path({str(store)!r}), IngestConfig(workers=1))
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


def random_reads(store_root: Path, records: list[Path], reads: int) -> dict[str, float]:
    """Seconds per random single-record read: the store (two access modes) vs rdsamp."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(records), reads)
    timings = {}
    for access in ("mmap", "parquet"):
        store = SignalStore.open(store_root, access=access)
        if access == "mmap":
            store.warm()  # the one-off copy is not a per-read cost
        positions = [store.position(f"scale/{records[i].name}") for i in picks]
        started = time.perf_counter()
        for position in positions:
            store.signal(position)
        timings[access] = (time.perf_counter() - started) / reads
    started = time.perf_counter()
    for i in picks:
        wfdb.rdsamp(str(records[i]))
    timings["rdsamp"] = (time.perf_counter() - started) / reads
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument(
        "--scaling-records",
        type=int,
        default=20_000,
        help="records for 1 vs 2 workers once the workers' start-up (imports, ~1.4 s each) is amortised",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    originals = sorted(p.with_suffix("") for p in SHARED_PTBXL.glob("records100/*/*.hea"))
    work = args.out / "ingest"

    scale = build_scale_set(originals, args.records, work / "scale")
    baseline_s = time_rdsamp(scale)
    one_s = time_ingest(work / "scale", work / "store1", workers=1)
    two_s = time_ingest(work / "scale", work / "store2", workers=2)

    build_scale_set(originals, args.scaling_records, work / "scaling")
    scaling_one_s = time_ingest(work / "scaling", work / "scaling1", workers=1)
    scaling_two_s = time_ingest(work / "scaling", work / "scaling2", workers=2)
    for folder in ("scaling", "scaling1", "scaling2"):
        shutil.rmtree(work / folder, ignore_errors=True)

    small = build_scale_set(originals, 1_000, work / "small")
    large = build_scale_set(originals, 10_000, work / "large")
    rss_small = peak_rss_mib(work / "small", work / "rss_small")
    rss_large = peak_rss_mib(work / "large", work / "rss_large")

    reads = random_reads(work / "store1", scale, reads=2_000)
    results = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "records": args.records,
        "rdsamp_records_per_s": args.records / baseline_s,
        "ingest_1_worker_records_per_s": args.records / one_s,
        "ingest_vs_rdsamp_ratio_1_core": baseline_s / one_s,
        "ingest_2_workers_records_per_s": args.records / two_s,
        "speedup_2_workers": one_s / two_s,
        "scaling_records": args.scaling_records,
        "scaling_1_worker_records_per_s": args.scaling_records / scaling_one_s,
        "scaling_2_workers_records_per_s": args.scaling_records / scaling_two_s,
        "speedup_2_workers_scaling_set": scaling_one_s / scaling_two_s,
        "peak_rss_mib_1000": rss_small,
        "peak_rss_mib_10000": rss_large,
        "rss_ratio_10000_vs_1000": rss_large / rss_small,
        "read_us_mmap": reads["mmap"] * 1e6,
        "read_us_parquet": reads["parquet"] * 1e6,
        "read_us_rdsamp": reads["rdsamp"] * 1e6,
        "read_ratio_mmap_vs_rdsamp": reads["rdsamp"] / reads["mmap"],
        "read_ratio_parquet_vs_rdsamp": reads["rdsamp"] / reads["parquet"],
        "peak_rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(results, indent=2))
    for key, value in results.items():
        print(f"{key:36s} {value:,.2f}" if isinstance(value, float) else f"{key:36s} {value}")
    for folder in (scale, small, large):
        shutil.rmtree(folder[0].parent, ignore_errors=True)


if __name__ == "__main__":
    main()
