"""Command line for using the library without Dagster: ``kmerl ingest``, ``kmerl home``."""

from __future__ import annotations

import argparse
import logging
import sys

from kmerl.config import KmerlConfig
from kmerl.ingest import ingest_source
from kmerl.progress import Progress

log = logging.getLogger("kmerl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kmerl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="ingest configured sources into the signal store")
    ingest.add_argument("--source", action="append", help="source name (repeatable; default: all configured)")
    home = commands.add_parser("home", help="print where the configured home keeps each store, cache and log")
    home.add_argument("name", nargs="?", help="one path by name (e.g. dagster), printed alone")
    args = parser.parse_args(argv)
    config = KmerlConfig()
    if args.command == "home":
        return _print_home(config, args.name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _ingest(config, args.source)


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

        manifest = ingest_source(
            source, config.layout.signal_store, config.ingest, on_progress=report, partition=partition
        )
        reasons = ", ".join(f"{reason}: {count}" for reason, count in manifest.quarantine_reasons.items())
        print(
            f"{partition}: {manifest.records_in} records -> {manifest.ingested} ingested, "
            f"{manifest.quarantined} quarantined{f' ({reasons})' if reasons else ''}; version {manifest.version}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
