"""Command line for using the library without Dagster: ``kmerl ingest``."""

from __future__ import annotations

import argparse
import logging
import sys

from kmerl.config import KmerlConfig
from kmerl.ingest import ingest_source

log = logging.getLogger("kmerl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kmerl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="ingest configured sources into the signal store")
    ingest.add_argument("--source", action="append", help="source name (repeatable; default: all configured)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = KmerlConfig()
    names = args.source or [source.name for source in config.sources]
    partitions = [(config.source(name), key) for name in names for key in config.source(name).partition_keys()]
    for source, name in partitions:
        manifest = ingest_source(
            source,
            config.signal_store,
            config.ingest,
            on_progress=lambda progress, name=name: log.info("%s: %s", name, progress),
            partition=name,
        )
        reasons = ", ".join(f"{reason}: {count}" for reason, count in manifest.quarantine_reasons.items())
        print(
            f"{name}: {manifest.records_in} records -> {manifest.ingested} ingested, "
            f"{manifest.quarantined} quarantined{f' ({reasons})' if reasons else ''}; version {manifest.version}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
