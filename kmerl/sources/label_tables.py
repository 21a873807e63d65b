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


def read_dx_aliases(directory: Path) -> pl.DataFrame:
    """(alias, code): every diagnosis name and abbreviation of ``dx_mapping_*.csv``, so that
    ``# Dx`` lines written in words (CPSC's ``RBBB``, ``I-AVB``) read as codes. The first
    file names an alias given twice."""
    frames = [
        pl.read_csv(path, columns=["Dx", "SNOMEDCTCode", "Abbreviation"], infer_schema=False)
        for path in dx_mapping_files(directory)
    ]
    table = pl.concat(frames).select(
        pl.col("SNOMEDCTCode").str.strip_chars().alias("code"),
        pl.col("Dx").str.strip_chars(),
        pl.col("Abbreviation").str.strip_chars(),
    )
    return (
        pl.concat([table.select(alias=column, code="code") for column in ("Dx", "Abbreviation")])
        .drop_nulls()
        .unique("alias", keep="first", maintain_order=True)
    )
