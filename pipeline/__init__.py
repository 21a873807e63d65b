"""Dagster wiring of the kmerl pipeline: definitions, resources, jobs and the main run."""
