"""kmerl: from raw 12-lead ECG archives and their reports to a lead-aware ECG encoder."""

__version__ = "0.1.0"
