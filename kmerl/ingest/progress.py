"""Progress reporting lives in :mod:`kmerl.progress`; this name stays importable for code written against it."""

from kmerl.progress import Progress, ProgressCallback, ProgressTracker

__all__ = ["Progress", "ProgressCallback", "ProgressTracker"]
