"""Challenge diagnoses (``# Dx:``) as SNOMED CT codes.

An entry may be the code itself, or an abbreviation or name from the archive's
``dx_mapping_*.csv`` (CPSC's ``RBBB``, ``AF``, ``I-AVB``), or a label the user maps
in a ``label, snomed_code`` CSV. Anything else is an unmapped label: an error that
lists every one with its count, or, if the source allows it, a quarantined record —
never a made-up code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kmerl.sources.base import SourceRefused
from kmerl.sources.label_tables import dx_mapping_files, read_dx_aliases, read_dx_mapping

USER_MAP_COLUMNS = ("label", "snomed_code")


class UnmappedLabelsError(SourceRefused):
    """A source whose diagnoses include labels that map to no code."""

    def __init__(self, source: str, unmapped: Counter[str]) -> None:
        listed = ", ".join(f"{label} ({count})" for label, count in unmapped.most_common())
        super().__init__(
            f"{source}: {len(unmapped)} #Dx labels map to no SNOMED CT code in the dx mapping or label_map, "
            f"in {unmapped.total()} places: {listed}. Map them in a label_map CSV ({', '.join(USER_MAP_COLUMNS)}), "
            "or set unmapped_labels = 'quarantine' to quarantine their records."
        )
        self.unmapped = unmapped


@dataclass(frozen=True, slots=True)
class DxLabels:
    names: dict[str, str]  # code -> diagnosis name
    aliases: dict[str, str]  # lower-cased abbreviation, name or user label -> code

    @classmethod
    def load(cls, mapping_dir: Path, label_map: Path | None = None) -> DxLabels:
        names: dict[str, str] = {}
        aliases: dict[str, str] = {}
        if dx_mapping_files(mapping_dir):
            names = dict(read_dx_mapping(mapping_dir).iter_rows())
            for alias, code in read_dx_aliases(mapping_dir).iter_rows():
                aliases.setdefault(alias.lower(), code)
        if label_map is not None:
            aliases |= {label.strip().lower(): code.strip() for label, code in _read_user_map(label_map).iter_rows()}
        return cls(names, aliases)

    def code(self, label: str) -> str | None:
        """The SNOMED CT code of one ``# Dx`` entry, or None when nothing maps it."""
        if label.isdigit():
            return label
        return self.aliases.get(label.lower())


def _read_user_map(path: Path) -> pl.DataFrame:
    table = pl.read_csv(path, infer_schema=False)
    missing = [column for column in USER_MAP_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: label_map needs the columns {', '.join(USER_MAP_COLUMNS)}; missing {missing}")
    codes = table.get_column("snomed_code").str.strip_chars()
    if not codes.str.contains(r"^\d+$").all():
        bad = table.filter(~codes.str.contains(r"^\d+$")).row(0)
        raise ValueError(f"{path}: snomed_code must be a number; row {bad}")
    return table.select(*USER_MAP_COLUMNS)
