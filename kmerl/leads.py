"""The twelve standard ECG leads and how raw channel names map onto them.

Archives disagree on lead order (PTB-XL stores aVL before aVF, MIMIC-IV-ECG the
reverse) and on spelling (``AVR``, ``aVR``, ``avr``), so every consumer works with
names normalised here, never with channel positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(STANDARD_LEADS)}

# Spellings seen in WFDB archives, upper-cased. MLII/MLI/MLIII are the modified
# limb leads of Holter recordings (MIT-BIH); they are the closest standard lead.
_ALIASES: dict[str, str] = {name.upper(): name for name in STANDARD_LEADS} | {
    "D1": "I", "D2": "II", "D3": "III",
    "MLI": "I", "MLII": "II", "MLIII": "III",
    "LEAD I": "I", "LEAD II": "II", "LEAD III": "III",
}  # fmt: skip

# Real leads that are not among the twelve: Frank orthogonal leads, posterior and
# right-sided chest leads. They are dropped and recorded, not treated as errors.
_KNOWN_EXTRA: frozenset[str] = frozenset(
    {"X", "Y", "Z", "VX", "VY", "VZ", "V7", "V8", "V9", "V3R", "V4R", "V5R", "V6R"}
)

LEAD_SUBSETS: dict[str, tuple[str, ...]] = {
    "I": ("I",),
    "II": ("II",),
    "limb3": ("I", "II", "III"),
    "limb6": ("I", "II", "III", "aVR", "aVL", "aVF"),
    "precordial6": ("V1", "V2", "V3", "V4", "V5", "V6"),
    "all12": STANDARD_LEADS,
}


class ChannelKind(str, Enum):
    STANDARD = "standard"
    EXTRA = "extra"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChannelMapping:
    """Where one raw channel goes: a standard lead, or dropped as extra/unknown."""

    raw_name: str
    kind: ChannelKind
    lead: str | None


def classify_channel(raw_name: str) -> ChannelMapping:
    key = " ".join(raw_name.strip().upper().split())
    if key in _ALIASES:
        return ChannelMapping(raw_name, ChannelKind.STANDARD, _ALIASES[key])
    if key in _KNOWN_EXTRA:
        return ChannelMapping(raw_name, ChannelKind.EXTRA, None)
    return ChannelMapping(raw_name, ChannelKind.UNKNOWN, None)


def lead_mask(leads: tuple[str, ...] | list[str]) -> list[bool]:
    """A 12-long boolean mask in standard order for a set of lead names."""
    wanted = {LEAD_INDEX[name] for name in leads}
    return [i in wanted for i in range(len(STANDARD_LEADS))]
