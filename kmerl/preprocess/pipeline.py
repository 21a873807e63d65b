"""The preprocessing steps composed: raw channels in, a fixed-shape 12-lead ECG out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmerl.leads import LEAD_INDEX, STANDARD_LEADS
from kmerl.preprocess.channels import select_channels
from kmerl.preprocess.config import PreprocessConfig
from kmerl.preprocess.quality import lead_quality_issue
from kmerl.preprocess.repair import repair_lead
from kmerl.preprocess.resample import resample
from kmerl.preprocess.window import LengthPolicy, Window
from kmerl.records import Reason, RecordError


@dataclass(frozen=True, slots=True)
class LeadIssue:
    """Why a standard lead present in the source is marked absent."""

    lead: str
    issue: str


@dataclass(frozen=True, slots=True)
class ProcessedECG:
    """A preprocessed ECG: NaN marks samples with no data (absent leads, padding)."""

    signal: np.ndarray  # (12, target_samples)
    lead_mask: np.ndarray  # (12,) bool, True where the lead carries signal
    valid_samples: int
    length_policy: LengthPolicy
    crop_offset_s: float
    dropped_channels: tuple[str, ...]
    lead_issues: tuple[LeadIssue, ...]
    interpolated_samples: int


def preprocess_signal(
    samples: np.ndarray,
    channel_names: list[str],
    fs: float,
    window: Window,
    config: PreprocessConfig,
) -> ProcessedECG:
    """Map leads, repair short gaps, drop unusable leads, resample, fit the length.

    ``samples`` is (samples, channels) in mV, already cut to ``window``.
    """
    selection = select_channels(channel_names)
    max_gap = int(config.max_gap_seconds * fs)
    kept: dict[str, np.ndarray] = {}
    issues: list[LeadIssue] = []
    interpolated = missing = 0
    for lead, channel in selection.lead_channels.items():
        repaired = repair_lead(samples[:, channel], max_gap)
        interpolated += repaired.interpolated
        missing += repaired.missing
        issue = repaired.issue or lead_quality_issue(repaired.samples, config)
        if issue is None:
            kept[lead] = repaired.samples
        else:
            issues.append(LeadIssue(lead, issue))

    total = samples.shape[0] * len(selection.lead_channels)
    if missing > config.max_missing_fraction * total:
        raise RecordError(
            Reason.TOO_MUCH_MISSING,
            f"{missing / total:.0%} of samples in the standard leads are NaN/inf "
            f"(limit {config.max_missing_fraction:.0%})",
        )
    if not kept:
        described = "; ".join(f"{i.lead}: {i.issue}" for i in issues)
        raise RecordError(Reason.NO_USABLE_LEADS, f"every standard lead is unusable ({described})")

    leads = sorted(kept, key=LEAD_INDEX.__getitem__)
    resampled = resample(np.stack([kept[lead] for lead in leads], axis=1), fs, config.target_fs)
    valid = min(resampled.shape[0], config.target_samples)
    signal = np.full((len(STANDARD_LEADS), config.target_samples), np.nan, dtype=config.dtype)
    signal[[LEAD_INDEX[lead] for lead in leads], :valid] = resampled[:valid].T
    mask = np.zeros(len(STANDARD_LEADS), dtype=bool)
    mask[[LEAD_INDEX[lead] for lead in leads]] = True
    return ProcessedECG(
        signal=signal,
        lead_mask=mask,
        valid_samples=valid,
        length_policy=window.policy,
        crop_offset_s=window.start / fs,
        dropped_channels=selection.dropped,
        lead_issues=tuple(issues),
        interpolated_samples=interpolated,
    )
