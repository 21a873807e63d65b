"""The configuration the asset graph is defined from (read once, at load time).

Partitions (one per source) and code versions are part of the graph's
definition, so they come from :class:`~kmerl.config.KmerlConfig` here rather than
from run configuration.
"""

from __future__ import annotations

from kmerl.config import KmerlConfig

CONFIG = KmerlConfig()
