"""``kmerl evaluate`` wall time on an archive the encoder never saw: the 105 Challenge
records with their diagnoses written as abbreviations (as CPSC2018 ships them), against
ingesting the same archive alone, measured in this run one after the other.

    python -m bench.evaluate [--encoder model.pt] [--bootstrap 1000]

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
from kmerl.ingest import ingest_source
from kmerl.model.evaluation.archive import evaluate_archive, ingest_for, read_encoder_input
from kmerl.model.runs import RunStore
from kmerl.sources import ChallengeSource
from kmerl.text_encoder import MiniLmEncoder
from tests.archives import write_challenge_in_words

SHARED_CINC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cinc2021"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", type=Path)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    config = KmerlConfig()
    runs = RunStore(config.layout.runs)
    encoder = args.encoder or runs.model_file(runs.current())
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_challenge_in_words(SHARED_CINC, root / "cpsc", 105)
        source = ChallengeSource(name="cpsc", root=root / "cpsc", val_fraction=0.0, test_fraction=0.5)
        ingest = ingest_for(read_encoder_input(encoder), config.ingest)
        started = time.perf_counter()
        ingest_source(source, root / "ingest-only", ingest)
        ingest_s = time.perf_counter() - started
        settings = config.model.evaluation.model_copy(update={"bootstrap": args.bootstrap})
        started = time.perf_counter()
        evaluation, _ = evaluate_archive(source, encoder, root / "home", MiniLmEncoder(), settings, ingest)
        evaluate_s = time.perf_counter() - started
        shutil.rmtree(root / "home", ignore_errors=True)
    rows = evaluation.results.height
    print(f"ingest alone (baseline): {ingest_s:.1f} s for 105 records")
    print(
        f"kmerl evaluate: {evaluate_s:.1f} s = {evaluate_s / ingest_s:.1f} x the baseline "
        f"({105 / evaluate_s:.1f} records/s; {rows} table rows incl. the untrained reference, "
        f"{args.bootstrap} bootstrap resamples)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
