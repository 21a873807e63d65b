"""The archives' tables of label codes: PTB-XL's SCP-ECG statements and the Challenge's SNOMED CT mapping.

Ingest names Challenge diagnoses with them, evaluation builds its classes from them,
and label-derived knowledge its vocabulary: one reader each, so all three agree.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

DX_MAPPING_GLOB = "dx_mapping_*.csv"


def read_scp_statements(path: Path) -> pl.DataFrame:
    """PTB-XL's ``scp_statements.csv`` with its unnamed first column called ``code``."""
    return pl.read_csv(path).rename({"": "code"})


def dx_mapping_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(DX_MAPPING_GLOB))


def read_dx_mapping(directory: Path) -> pl.DataFrame:
    """SNOMED CT codes and diagnosis names (code, name) from ``dx_mapping_*.csv``; the first
    file (scored before unscored) names a code listed twice."""
    paths = dx_mapping_files(directory)
    if not paths:
        raise FileNotFoundError(f"no {DX_MAPPING_GLOB} in {directory}")
    return (
        pl.concat([pl.read_csv(path, columns=["Dx", "SNOMEDCTCode"], infer_schema=False) for path in paths])
        .select(
            pl.col("SNOMEDCTCode").str.strip_chars().alias("code"),
            pl.col("Dx").str.strip_chars().alias("name"),
        )
        .unique("code", keep="first", maintain_order=True)
    )
