"""The feature store: training-ready rows (signal, report embedding, entity targets) per split.

The PyTorch view is in :mod:`kmerl.features.dataset` (importing torch only where needed)."""

from kmerl.features.builder import build_feature_store
from kmerl.features.config import FeatureConfig
from kmerl.features.manifest import FeatureManifest
from kmerl.features.reader import EntityTable, FeatureSplit, FeatureStore
from kmerl.features.targets import TargetEntities, entities_from_labels, label_vocabulary

__all__ = [
    "EntityTable",
    "FeatureConfig",
    "FeatureManifest",
    "FeatureSplit",
    "FeatureStore",
    "TargetEntities",
    "build_feature_store",
    "entities_from_labels",
    "label_vocabulary",
]
