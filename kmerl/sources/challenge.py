"""PhysioNet/CinC Challenge layout: ``.hea`` + ``.mat`` with SNOMED CT codes in comments."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from kmerl.records import Label, RecordRef
from kmerl.sources.base import FolderSource
from kmerl.sources.tabular import parse_float
from kmerl.wfdb_io import WfdbHeader

_MAPPING_GLOB = "dx_mapping_*.csv"


class ChallengeSource(FolderSource):
    """Diagnoses (``# Dx:``) become the labels and, named in words, the report text."""

    kind: Literal["physionet_challenge"] = "physionet_challenge"
    dx_mapping_dir: Path | None = Field(
        None, description="Folder with dx_mapping_scored.csv / dx_mapping_unscored.csv (default: the root)."
    )

    def complete(self, ref: RecordRef, header: WfdbHeader) -> RecordRef:
        fields = _comment_fields(header.comments)
        codes = [code.strip() for code in fields.get("dx", "").split(",") if code.strip()]
        names = _dx_names(self.dx_mapping_dir or self.root)
        unknown = [code for code in codes if code not in names]
        sex = fields.get("sex", "").lower()
        return ref.with_updates(
            report=", ".join(names.get(code, f"SNOMED CT {code}") for code in codes) or None,
            labels=tuple(Label("snomed", code) for code in codes),
            age=parse_float(fields.get("age")),
            sex=sex if sex in {"male", "female"} else None,
            notes=ref.notes + ((f"SNOMED CT codes not in the dx mapping: {', '.join(unknown)}",) if unknown else ()),
        )


def _comment_fields(comments: tuple[str, ...]) -> dict[str, str]:
    """``Age: 81`` style header comments as a lower-cased key -> value dict."""
    fields: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


@lru_cache(maxsize=8)
def _dx_names(mapping_dir: Path) -> dict[str, str]:
    """SNOMED CT code -> diagnosis name from the Challenge's mapping tables."""
    names: dict[str, str] = {}
    for path in sorted(mapping_dir.glob(_MAPPING_GLOB)):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                names.setdefault(row["SNOMEDCTCode"].strip(), row["Dx"].strip())
    return names
