"""``kmerl evaluate`` wall time on archives the encoder never saw, against ingesting the
same archive alone, measured in this run one after the other: the 105 Challenge records
with their diagnoses written as abbreviations (as CPSC2018 ships them), and ``--copies``
x 500 PTB-XL records (copies of the sample under new ids; copies of one record fall in
different folds, so their AUROCs mean nothing: this measures time). Then the embedding
throughput of the encoder (frozen, all 12 leads) against its training throughput, as
the training run recorded it.

    python -m bench.evaluate [--encoder model.pt] [--bootstrap 1000] [--copies 2]

The encoder defaults to the latest training run of the configured home (``make run``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kmerl.config import KmerlConfig
from kmerl.features import FeatureStore
from kmerl.ingest import IngestConfig, ingest_source
from kmerl.model import embed, load_encoder
from kmerl.model.config import EvaluationConfig
from kmerl.model.evaluation.archive import evaluate_archive, ingest_for, read_encoder_input
from kmerl.model.runs import RunStore
from kmerl.sources import ChallengeSource, PtbXlSource
from kmerl.text_encoder import MiniLmEncoder
from tests.archives import read_ptbxl_rows, write_challenge_in_words, write_ptbxl_subset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", type=Path)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=2, help="copies of the 500 PTB-XL records")
    args = parser.parse_args(argv)
    config = KmerlConfig()
    runs = RunStore(config.layout.runs)
    encoder = args.encoder or runs.model_file(runs.current())
    ingest = ingest_for(read_encoder_input(encoder), config.ingest)
    settings = config.model.evaluation.model_copy(update={"bootstrap": args.bootstrap})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_challenge_in_words(SHARED_DATA / "cinc2021", root / "cpsc", 105)
        cpsc = ChallengeSource(name="cpsc", root=root / "cpsc")
        _timed(cpsc, 105, encoder, root, settings, ingest)
        copies = _ptbxl_copies(root / "ptbxl_copies", args.copies)
        ptbxl = PtbXlSource(name="ptbxl_copies", root=copies)
        _timed(ptbxl, 500 * args.copies, encoder, root, settings, ingest)
        _embedding_throughput(encoder, root / "home" / "evaluation" / "ptbxl_copies" / "features", runs)
    return 0


def _timed(
    source: ChallengeSource | PtbXlSource,
    records: int,
    encoder: Path,
    root: Path,
    settings: EvaluationConfig,
    ingest: IngestConfig,
) -> None:
    started = time.perf_counter()
    ingest_source(source, root / f"ingest-only-{source.name}", ingest)
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    evaluation, _ = evaluate_archive(source, encoder, root / "home", MiniLmEncoder(), settings, ingest)
    evaluate_s = time.perf_counter() - started
    shutil.rmtree(root / f"ingest-only-{source.name}", ignore_errors=True)
    print(f"{source.name}: ingest alone (baseline) {ingest_s:.1f} s for {records} records")
    print(
        f"{source.name}: kmerl evaluate {evaluate_s:.1f} s = {evaluate_s / ingest_s:.1f} x the baseline "
        f"({records / evaluate_s:.1f} records/s; {evaluation.results.height} table rows incl. the untrained "
        f"reference, probes over {settings.archive_folds} folds, {settings.bootstrap} bootstrap resamples)"
    )


def _ptbxl_copies(dst: Path, copies: int) -> Path:
    rows = read_ptbxl_rows(SHARED_DATA / "ptbxl")
    copied = [row | {"ecg_id": str(int(float(row["ecg_id"])) + 100_000 * c)} for c in range(copies) for row in rows]
    write_ptbxl_subset(SHARED_DATA / "ptbxl", dst, copied)
    (dst / "scp_statements.csv").symlink_to(SHARED_DATA / "ptbxl" / "scp_statements.csv")
    return dst


def _embedding_throughput(encoder: Path, features: Path, runs: RunStore) -> None:
    model, store = load_encoder(encoder), FeatureStore.open(features)
    split = max(store.manifest.rows, key=lambda name: store.manifest.rows[name])
    started = time.perf_counter()
    embedded = embed(model, store, split)
    rate = len(embedded.record_ids) / (time.perf_counter() - started)
    training = runs.current().final.get("samples_per_s")
    print(
        f"embedding (frozen, all 12 leads): {rate:.1f} records/s"
        + (f" vs training {training:.1f} samples/s = {rate / training:.1f} x" if training else "")
    )


if __name__ == "__main__":
    sys.exit(main())
