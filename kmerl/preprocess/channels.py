"""Mapping raw channels onto the twelve standard leads."""

from __future__ import annotations

from dataclasses import dataclass

from kmerl.leads import ChannelKind, classify_channel
from kmerl.records import Reason, RecordError


@dataclass(frozen=True, slots=True)
class ChannelSelection:
    """Channel index of each standard lead found, and the raw channels dropped."""

    lead_channels: dict[str, int]
    dropped: tuple[str, ...]


def select_channels(raw_names: list[str]) -> ChannelSelection:
    """Raise on ambiguous (duplicated) or entirely unrecognised lead names."""
    lead_channels: dict[str, int] = {}
    dropped: list[str] = []
    for index, raw_name in enumerate(raw_names):
        mapping = classify_channel(raw_name)
        if mapping.kind is not ChannelKind.STANDARD:
            dropped.append(raw_name)
            continue
        assert mapping.lead is not None
        if mapping.lead in lead_channels:
            first = raw_names[lead_channels[mapping.lead]]
            raise RecordError(
                Reason.DUPLICATE_LEADS,
                f"channels {index} ({raw_name!r}) and {lead_channels[mapping.lead]} ({first!r}) "
                f"both name lead {mapping.lead}",
            )
        lead_channels[mapping.lead] = index
    if not lead_channels:
        raise RecordError(Reason.NO_STANDARD_LEADS, f"no standard ECG lead among channels {raw_names}")
    return ChannelSelection(lead_channels, tuple(dropped))
