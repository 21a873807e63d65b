"""PhysioNet/CinC Challenge layout: ``.hea`` + ``.mat`` with SNOMED CT codes in comments."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from kmerl.records import Label, RecordRef
from kmerl.sources.base import FolderSource
from kmerl.sources.label_tables import dx_mapping_files, read_dx_mapping
from kmerl.sources.tabular import parse_float
from kmerl.wfdb_io import WfdbHeader


class ChallengeSource(FolderSource):
    """Diagnoses (``# Dx:``) become the labels and, named in words, the report text."""

    kind: Literal["physionet_challenge"] = "physionet_challenge"
    dx_mapping_dir: Path | None = Field(
        None, description="Folder with dx_mapping_scored.csv / dx_mapping_unscored.csv (default: the root)."
    )

    @property
    def mapping_dir(self) -> Path:
        return self.dx_mapping_dir or self.root

    def complete(self, ref: RecordRef, header: WfdbHeader) -> RecordRef:
        fields = _comment_fields(header.comments)
        codes = [code.strip() for code in fields.get("dx", "").split(",") if code.strip()]
        names = _dx_names(self.mapping_dir)
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
    """SNOMED CT code -> diagnosis name; none without mapping tables (reports then name the codes)."""
    if not dx_mapping_files(mapping_dir):
        return {}
    return dict(read_dx_mapping(mapping_dir).iter_rows())
