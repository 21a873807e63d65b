"""Dagster wiring of the kmerl pipeline (``pipeline.defs``), its code location and the main run."""
