"""PhysioNet/CinC Challenge layout: ``.hea`` + ``.mat`` with diagnoses in comments."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from kmerl.records import Label, Reason, RecordError, RecordRef
from kmerl.sources.base import FolderSource, iter_header_paths
from kmerl.sources.dx_labels import DxLabels, UnmappedLabelsError
from kmerl.sources.tabular import parse_float
from kmerl.wfdb_io import WfdbHeader, read_header


class ChallengeSource(FolderSource):
    """Diagnoses (``# Dx:``) become SNOMED CT labels and, named in words, the report text."""

    kind: Literal["physionet_challenge"] = "physionet_challenge"
    dx_mapping_dir: Path | None = Field(
        None, description="Folder with dx_mapping_scored.csv / dx_mapping_unscored.csv (default: the root)."
    )
    label_map: Path | None = Field(
        None,
        description="CSV (label, snomed_code) for # Dx entries that are neither codes nor named in the dx mapping.",
    )
    unmapped_labels: Literal["error", "quarantine"] = Field(
        "error",
        description="A # Dx entry that maps to no code: 'error' fails the ingest listing every such label and "
        "its count; 'quarantine' quarantines the records that carry one.",
    )

    @property
    def mapping_dir(self) -> Path:
        return self.dx_mapping_dir or self.root

    def check(self) -> None:
        """Unless unmapped labels are quarantined, read every header's ``# Dx`` first and
        refuse the source if any entry maps to no code."""
        if self.unmapped_labels == "quarantine":
            return
        labels = _dx_labels(self.mapping_dir, self.label_map)
        unmapped: Counter[str] = Counter()
        for record_path in iter_header_paths(self.root):
            try:
                comments = read_header(record_path).comments
            except RecordError:
                continue  # the record is quarantined for it during ingest
            unmapped.update(entry for entry in _dx_entries(comments) if labels.code(entry) is None)
        if unmapped:
            raise UnmappedLabelsError(self.name, unmapped)

    def complete(self, ref: RecordRef, header: WfdbHeader) -> RecordRef:
        fields = _comment_fields(header.comments)
        labels = _dx_labels(self.mapping_dir, self.label_map)
        entries = _dx_entries(header.comments)
        codes = [labels.code(entry) for entry in entries]
        if unmapped := [entry for entry, code in zip(entries, codes, strict=True) if code is None]:
            raise RecordError(
                Reason.UNMAPPED_LABEL,
                f"# Dx entries with no SNOMED CT code (dx mapping, label_map): {', '.join(unmapped)}",
            )
        known = [code for code in codes if code is not None]
        unnamed = [code for code in known if code not in labels.names]
        sex = fields.get("sex", "").lower()
        return ref.with_updates(
            report=", ".join(labels.names.get(code, f"SNOMED CT {code}") for code in known) or None,
            labels=tuple(Label("snomed", code) for code in known),
            age=parse_float(fields.get("age")),
            sex=sex if sex in {"male", "female"} else None,
            notes=ref.notes + ((f"SNOMED CT codes not in the dx mapping: {', '.join(unnamed)}",) if unnamed else ()),
        )


def _dx_entries(comments: tuple[str, ...]) -> list[str]:
    return [entry.strip() for entry in _comment_fields(comments).get("dx", "").split(",") if entry.strip()]


def _comment_fields(comments: tuple[str, ...]) -> dict[str, str]:
    """``Age: 81`` style header comments as a lower-cased key -> value dict."""
    fields: dict[str, str] = {}
    for comment in comments:
        key, sep, value = comment.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


@lru_cache(maxsize=8)
def _dx_labels(mapping_dir: Path, label_map: Path | None) -> DxLabels:
    return DxLabels.load(mapping_dir, label_map)
