"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs``."""

from kmerl.config import KmerlConfig
from pipeline.defs import build_definitions

defs = build_definitions(KmerlConfig())
