"""Preprocessing: pure functions from raw channels to a fixed-shape 12-lead array."""

from kmerl.preprocess.config import PreprocessConfig
from kmerl.preprocess.pipeline import LeadIssue, ProcessedECG, preprocess_signal
from kmerl.preprocess.window import LengthPolicy, Window, plan_window

__all__ = [
    "LeadIssue",
    "LengthPolicy",
    "PreprocessConfig",
    "ProcessedECG",
    "Window",
    "plan_window",
    "preprocess_signal",
]
