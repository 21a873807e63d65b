"""Resources the assets use, configurable in the Dagster UI's launchpad."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from kmerl.storage import store_path


class StorageResource(ConfigurableResource):
    """Where the pipeline's stores live: a local folder or any fsspec URL (s3://...)."""

    root: str

    @property
    def signal_store(self) -> Path:
        return store_path(self.root) / "ecg_signals"
