"""Source adapters: one small module per archive layout, one shared record model."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kmerl.sources.base import SourceAdapter
from kmerl.sources.challenge import ChallengeSource
from kmerl.sources.mimic import MimicIvEcgSource
from kmerl.sources.ptbxl import PtbXlSource
from kmerl.sources.wfdb_folder import WfdbFolderSource

SourceConfig = Annotated[
    PtbXlSource | MimicIvEcgSource | ChallengeSource | WfdbFolderSource,
    Field(discriminator="kind"),
]

__all__ = [
    "ChallengeSource",
    "MimicIvEcgSource",
    "PtbXlSource",
    "SourceAdapter",
    "SourceConfig",
    "WfdbFolderSource",
]
