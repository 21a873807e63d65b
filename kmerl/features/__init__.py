"""The feature store: training-ready rows (signal, report embedding, entity targets) per split.

The PyTorch view is in :mod:`kmerl.features.dataset` (importing torch only where needed)."""

from kmerl.features.builder import build_feature_store
from kmerl.features.config import FeatureConfig
from kmerl.features.knowledge import Vocabulary, entities_from_labels, label_vocabulary
from kmerl.features.manifest import FeatureManifest, load_manifest
from kmerl.features.reader import EntityTable, FeatureSplit, FeatureStore

__all__ = [
    "EntityTable",
    "FeatureConfig",
    "FeatureManifest",
    "FeatureSplit",
    "FeatureStore",
    "Vocabulary",
    "build_feature_store",
    "entities_from_labels",
    "label_vocabulary",
    "load_manifest",
]
