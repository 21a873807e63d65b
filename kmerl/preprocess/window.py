"""Which samples of a record to read, and whether it is cropped or padded."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kmerl.preprocess.config import PreprocessConfig
from kmerl.records import Reason, RecordError


class LengthPolicy(str, Enum):
    EXACT = "exact"
    CROPPED = "cropped"
    PADDED = "padded"


@dataclass(frozen=True, slots=True)
class Window:
    """Source samples ``[start, stop)`` to read and the policy that chose them."""

    start: int
    stop: int
    policy: LengthPolicy


def plan_window(sig_len: int, fs: float, config: PreprocessConfig) -> Window:
    """Choose the window before reading, so a 24-hour record costs 10 s of I/O."""
    if sig_len <= 0:
        raise RecordError(Reason.ZERO_LENGTH_SIGNAL, "the record has no samples")
    if sig_len / fs < config.min_seconds:
        raise RecordError(
            Reason.TOO_SHORT, f"{sig_len / fs:.2f} s long, shorter than the minimum {config.min_seconds} s"
        )
    needed = round(config.window_seconds * fs)
    if sig_len < needed:
        return Window(0, sig_len, LengthPolicy.PADDED)
    if sig_len == needed:
        return Window(0, sig_len, LengthPolicy.EXACT)
    start = 0 if config.crop_anchor == "start" else (sig_len - needed) // 2
    return Window(start, start + needed, LengthPolicy.CROPPED)
