"""The record model every source adapter produces and every later stage consumes.

Adapters describe records cheaply (paths and metadata, no samples); the ingest
workers read the samples. Anything wrong with a record travels as a
:class:`RecordError` (raised while processing) or a :class:`Rejection` (found while
listing), and both end up as one quarantine row that names the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path


class Split(str, Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Reason(str, Enum):
    """Why a record was quarantined. Stable codes: auditors group by them."""

    DUPLICATE_RECORD_ID = "duplicate_record_id"
    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    MISSING_SIGNAL_FILE = "missing_signal_file"
    TRUNCATED_SIGNAL = "truncated_signal"
    UNREADABLE_SIGNAL = "unreadable_signal"
    ZERO_LENGTH_SIGNAL = "zero_length_signal"
    TOO_SHORT = "too_short"
    DUPLICATE_LEADS = "duplicate_leads"
    NO_STANDARD_LEADS = "no_standard_leads"
    TOO_MUCH_MISSING = "too_much_missing"
    NO_USABLE_LEADS = "no_usable_leads"
    BAD_METADATA = "bad_metadata"
    UNMAPPED_LABEL = "unmapped_label"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Label:
    """A source label: a code in a coding system, with the source's own score."""

    system: str  # "scp" (PTB-XL) or "snomed" (PhysioNet Challenge)
    code: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One ECG as listed by a source: where its WFDB record lives and what is known.

    ``record_path`` is the WFDB record path without extension; ``relative_path`` is
    the same path relative to the source root, used in fingerprints so that moving a
    data set does not invalidate its store.
    """

    record_id: str
    source: str
    native_id: str
    record_path: Path
    relative_path: str
    patient_id: str | None = None
    split: Split | None = None
    fold: int | None = None
    report: str | None = None
    labels: tuple[Label, ...] = ()
    age: float | None = None
    sex: str | None = None
    recorded_at: datetime | None = None
    notes: tuple[str, ...] = field(default=())

    def with_updates(self, **changes: object) -> RecordRef:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record a source lists but cannot describe (found before any sample is read)."""

    record_id: str
    source: str
    reason: Reason
    detail: str


class RecordError(Exception):
    """A record that cannot be ingested; carries the quarantine reason and detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
