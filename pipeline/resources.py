"""Resources the assets use, configurable in the Dagster UI's launchpad."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource


class StorageResource(ConfigurableResource):
    """Where the pipeline's stores live."""

    root: str

    @property
    def signal_store(self) -> Path:
        return Path(self.root) / "ecg_signals"
