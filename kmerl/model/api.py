"""A trained encoder from Python: load it, embed a feature-store split with any leads,
score classes zero-shot, fit a linear probe — what evaluation does, one step at a time::

    from kmerl.features import FeatureStore
    from kmerl.model import embed, load_encoder, probe, zero_shot
    from kmerl.text_encoder import MiniLmEncoder

    model = load_encoder(".kmerl/store/kmerl_encoder/runs/<run>/model.pt")
    store = FeatureStore.open(".kmerl/evaluation/cpsc/features")
    train, test = embed(model, store, "train", leads="limb6"), embed(model, store, "test", leads="limb6")
    scores = zero_shot(model, test, ["atrial fibrillation", "sinus rhythm"], MiniLmEncoder())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from kmerl.features import FeatureStore
from kmerl.leads import LEAD_SUBSETS, lead_mask
from kmerl.model.checkpoint import load_model
from kmerl.model.evaluation.archive import read_encoder_input
from kmerl.model.evaluation.evaluate import RecordSet, embed_records
from kmerl.model.evaluation.probe import probe_scores
from kmerl.model.export import CONFIG, load_exported
from kmerl.model.network import KmerlModel
from kmerl.text_encoder import TextEncoder


@dataclass(frozen=True, slots=True)
class Embedded:
    """Frozen outputs of the encoder for the records that hold at least one of the leads."""

    record_ids: list[str]
    labels: pl.Series  # each record's source labels (system, code, score)
    features: np.ndarray  # (records, width): what a probe is fitted on
    embeddings: np.ndarray  # (records, embed_dim), L2-normalised, in the space text prompts are projected to


def load_encoder(path: Path | str, device: str = "cpu") -> KmerlModel:
    """A trained encoder in eval mode, from a run's ``model.pt`` or an export folder
    (``kmerl export``); a missing, truncated or foreign file is an
    :class:`~kmerl.model.evaluation.archive.ArchiveError` naming the file."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return load_exported(path, device)
    read_encoder_input(path)
    return load_model(path, device)


def embed(
    model: KmerlModel,
    store: FeatureStore,
    split: str,
    leads: str | Sequence[str] = "all12",
    batch_size: int = 64,
    device: str = "cpu",
) -> Embedded:
    """Embed one split of a feature store with only ``leads`` (a name from
    :data:`kmerl.leads.LEAD_SUBSETS`, or lead names): the other leads are masked as absent."""
    names = LEAD_SUBSETS[leads] if isinstance(leads, str) else tuple(leads)
    features = store.split(split)
    metadata = features.metadata(["record_id", "labels"])
    wanted = np.array(lead_mask(names))
    keep = (features.column("lead_mask") & wanted).any(axis=1)
    records = RecordSet(
        parts=[(features, np.flatnonzero(keep))],
        record_ids=metadata["record_id"].filter(pl.Series(keep)).to_list(),
        labels=np.zeros((int(keep.sum()), 0), dtype=bool),
        lead_masks=features.column("lead_mask")[keep],
    )
    out = embed_records(model, records, wanted, None, batch_size, device)
    return Embedded(records.record_ids, metadata["labels"].filter(pl.Series(keep)), out.features, out.embeddings)


@torch.no_grad()
def zero_shot(
    model: KmerlModel,
    embedded: Embedded,
    class_names: Sequence[str],
    text_encoder: TextEncoder,
    template: str = "{name}",
) -> np.ndarray:
    """(records, classes) cosine similarity between each ECG and each class prompt."""
    prompts = torch.from_numpy(text_encoder.encode([template.format(name=name) for name in class_names]))
    device = model.entity_embeddings.device
    text = model.encode_text(prompts.to(device)).cpu().numpy()
    return embedded.embeddings @ text.T


def probe(fit: Embedded, fit_labels: np.ndarray, test: Embedded, c: float = 1.0) -> np.ndarray:
    """(test records, classes) probabilities of a logistic regression per class, fitted on
    ``fit``'s frozen features and ``fit_labels`` (records, classes)."""
    return probe_scores(fit.features, fit_labels, test.features, c)
