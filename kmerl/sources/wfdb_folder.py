"""Any folder of WFDB records: header comments become the report text."""

from __future__ import annotations

from typing import Literal

from kmerl.records import RecordRef
from kmerl.sources.base import FolderSource
from kmerl.wfdb_io import WfdbHeader


class WfdbFolderSource(FolderSource):
    """The fallback for archives with no metadata table (PTB Diagnostic, MIT-BIH, ...)."""

    kind: Literal["wfdb_folder"] = "wfdb_folder"

    def complete(self, ref: RecordRef, header: WfdbHeader) -> RecordRef:
        report = "\n".join(line for line in header.comments if line) or None
        return ref.with_updates(report=report)
