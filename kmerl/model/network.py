"""The pretraining model: ECG encoder, text projection, cardiac query network, temperature.

``forward`` takes a batch and returns the losses, so DDP wraps the whole step;
the other methods are what evaluation uses on a trained model.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kmerl.model.config import InputShape, TrainConfig
from kmerl.model.encoder import EcgEncoder, EncoderOutput
from kmerl.model.losses import contrastive_loss, knowledge_loss
from kmerl.model.masking import drop_leads, mask_segments, patch_validity
from kmerl.model.query import CardiacQueryNetwork

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's cap: a temperature below 0.01 destabilises training


class Losses(NamedTuple):
    total: Tensor
    contrastive: Tensor
    knowledge: Tensor


class KmerlModel(nn.Module):
    entity_embeddings: Tensor  # a buffer: the vocabulary's name embeddings

    def __init__(self, config: TrainConfig, shape: InputShape, text_dim: int, entity_embeddings: Tensor) -> None:
        super().__init__()
        self.config = config
        self.shape = shape
        self.encoder = EcgEncoder(config.encoder, shape)
        self.text_projection = nn.Linear(text_dim, config.encoder.embed_dim)
        objective = config.objective
        initial = torch.tensor(math.log(1.0 / objective.temperature))
        if objective.learn_temperature:
            self.logit_scale = nn.Parameter(initial)
        else:
            self.register_buffer("logit_scale", initial)
        self.query_network = (
            CardiacQueryNetwork(
                text_dim, config.encoder.width, objective.query_heads, objective.query_layers, config.encoder.dropout
            )
            if objective.uses_knowledge
            else None
        )
        # The vocabulary's name embeddings travel with the weights: a checkpoint is self-contained.
        self.register_buffer("entity_embeddings", entity_embeddings.float().clone())

    def forward(self, batch: dict[str, Tensor]) -> Losses:
        signal, lead_mask = batch["signal"], batch["lead_mask"]
        masking = self.config.masking
        keep = None
        if self.training:
            if masking.lead_masking:
                lead_mask = drop_leads(lead_mask, masking.min_kept_leads)
            if masking.segment_ratio > 0:
                keep = mask_segments(patch_validity(signal, lead_mask, self.shape.patch_size), masking.segment_ratio)
        output = self.encoder(signal, lead_mask, keep)
        objective = self.config.objective
        zero = output.embedding.new_zeros((), dtype=torch.float32)
        contrastive = (
            contrastive_loss(
                output.embedding, self.text_projection(batch["report_embedding"]), self.temperature_scale()
            )
            if objective.contrastive_weight > 0
            else zero
        )
        knowledge = (
            knowledge_loss(self.query_logits(output, self.entity_embeddings), batch["entities"])
            if self.query_network is not None
            else zero
        )
        total = objective.contrastive_weight * contrastive + objective.knowledge_weight * knowledge
        return Losses(total, contrastive.detach(), knowledge.detach())

    def temperature_scale(self) -> Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE)

    @property
    def temperature(self) -> float:
        return float(1.0 / self.temperature_scale().detach().exp())

    def encode_ecg(self, signal: Tensor, lead_mask: Tensor) -> EncoderOutput:
        return self.encoder(signal, lead_mask)

    def encode_text(self, text_embedding: Tensor) -> Tensor:
        """Frozen sentence embeddings -> the shared space, L2-normalised."""
        return F.normalize(self.text_projection(text_embedding), dim=-1)

    def query_logits(self, output: EncoderOutput, query_text: Tensor) -> Tensor:
        if self.query_network is None:
            raise ValueError("this model was trained without the knowledge loss: it has no query network")
        return self.query_network(output.tokens, output.padding, query_text)
