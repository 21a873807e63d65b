"""Configuration of the encoder, its pretraining and its evaluation.

The defaults are the CPU configuration that trains on the sample archives in a few
minutes on two cores; :meth:`EncoderConfig.paper` gives MERL's ViT-tiny size
(width 192, depth 12, 3 heads) for GPU users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kmerl.features.config import FeatureConfig
from kmerl.hashing import stable_hash
from kmerl.leads import LEAD_SUBSETS

# Bump when a code change alters what training produces for the same inputs.
MODEL_LOGIC_VERSION = "2"

Tokenizer = Literal["per_lead", "joint"]
Precision = Literal["auto", "fp32", "bf16"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EncoderConfig(_Frozen):
    """The ECG encoder (method section 2)."""

    tokenizer: Tokenizer = Field(
        "per_lead",
        description="per_lead: one token per lead and patch, absent leads give no tokens (K-MERL); "
        "joint: one token per patch across all 12 leads, absent leads zero-filled (MERL-style baseline).",
    )
    patch_seconds: float = Field(
        0.1, gt=0, description="Patch length; in samples it follows from the sampling rate (10 at 100 Hz)."
    )
    width: int = Field(64, gt=0, description="Token width (paper: 192).")
    depth: int = Field(4, gt=0, description="Transformer layers (paper: 12).")
    heads: int = Field(4, gt=0, description="Attention heads (paper: 3).")
    mlp_ratio: float = Field(2.0, gt=0, description="Feed-forward width as a multiple of the token width (paper: 4).")
    dropout: float = Field(0.0, ge=0, lt=1)
    embed_dim: int = Field(128, gt=0, description="Size of the shared ECG-text embedding space.")

    @model_validator(mode="after")
    def _check_shapes(self) -> EncoderConfig:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        return self

    def input_shape(self, fs: int, samples: int) -> InputShape:
        """The encoder's input at ``fs`` Hz and ``samples`` per record (the feature store's,
        i.e. ingest's ``target_fs`` and window): patches must tile the record exactly."""
        patch = self.patch_seconds * fs
        if abs(patch - round(patch)) > 1e-6 or round(patch) < 1:
            raise ValueError(
                f"model.training.encoder.patch_seconds = {self.patch_seconds:g} is {patch:g} samples at {fs} Hz "
                "(ingest.preprocess.target_fs): a patch must be a whole number of samples"
            )
        patch_size = round(patch)
        if samples % patch_size:
            raise ValueError(
                f"records of {samples} samples ({samples / fs:g} s at {fs} Hz: ingest.preprocess.window_seconds) "
                f"do not split into patches of {patch_size} samples "
                f"(model.training.encoder.patch_seconds = {self.patch_seconds:g})"
            )
        return InputShape(fs=fs, samples=samples, patch_size=patch_size)

    @classmethod
    def paper(cls, **changes: object) -> EncoderConfig:
        """MERL's ViT-tiny: width 192, depth 12, 3 heads, 4x feed-forward."""
        return cls.model_validate({"width": 192, "depth": 12, "heads": 3, "mlp_ratio": 4.0, "embed_dim": 256} | changes)


@dataclass(frozen=True, slots=True)
class InputShape:
    """What an encoder is built for: records of ``samples`` at ``fs`` Hz, cut into patches."""

    fs: int
    samples: int
    patch_size: int

    @property
    def patches(self) -> int:
        return self.samples // self.patch_size


class MaskingConfig(_Frozen):
    """Pretraining masks (method section 3)."""

    lead_masking: bool = Field(True, description="Drop a random subset of each sample's leads, keeping at least one.")
    min_kept_leads: int = Field(1, ge=1, le=12, description="Fewest leads a sample keeps.")
    segment_ratio: float = Field(
        0.25, ge=0, lt=1, description="Share of each kept lead's patches masked, chosen independently per lead."
    )


class ObjectiveConfig(_Frozen):
    """The loss (method section 5): contrastive + knowledge."""

    temperature: float = Field(
        0.07, gt=0, description="Initial (or fixed) softmax temperature of the contrastive loss."
    )
    learn_temperature: bool = Field(True, description="Learn the temperature (CLIP) or keep it fixed (MERL).")
    contrastive_weight: float = Field(1.0, ge=0)
    knowledge_weight: float = Field(1.0, ge=0, description="0 turns the cardiac query network off.")
    query_layers: int = Field(1, gt=0, description="Cross-attention blocks of the cardiac query network.")
    query_heads: int = Field(4, gt=0)

    @model_validator(mode="after")
    def _some_loss(self) -> ObjectiveConfig:
        if self.contrastive_weight == 0 and self.knowledge_weight == 0:
            raise ValueError("at least one of contrastive_weight and knowledge_weight must be positive")
        return self

    @property
    def uses_knowledge(self) -> bool:
        return self.knowledge_weight > 0


class OptimConfig(_Frozen):
    """AdamW with linear warm-up and cosine decay, stepped per optimiser step."""

    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-8, ge=0, description="MERL's value.")
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="Share of all optimiser steps spent warming up.")
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description="Final learning rate as a share of lr.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the global gradient norm (None: off).")


class TrainConfig(_Frozen):
    """One pretraining run. Part of the run's identity: changing a field starts a new run."""

    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    masking: MaskingConfig = Field(default_factory=MaskingConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    epochs: int = Field(16, gt=0)
    batch_size: int = Field(32, gt=1, description="Samples per optimiser step on each process, before accumulation.")
    grad_accumulation: int = Field(1, gt=0, description="Micro-batches summed per optimiser step.")
    precision: Precision = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU.")
    device: str = Field("auto", description="auto: cuda:<local rank> when available, else cpu.")
    seed: int = 0
    deterministic: bool = Field(
        True, description="Bitwise-reproducible kernels (exact resume; index gradients are summed in a fixed order)."
    )
    train_split: str = "train"
    val_split: str | None = Field("val", description="Split whose loss is reported each epoch (None: skip).")
    log_every_steps: int = Field(5, gt=0, description="Optimiser steps between step metrics.")
    keep_checkpoints: int = Field(2, gt=0, description="Most recent epoch checkpoints kept.")

    @property
    def micro_batch_size(self) -> int:
        return self.batch_size // self.grad_accumulation

    @model_validator(mode="after")
    def _check_accumulation(self) -> TrainConfig:
        if self.batch_size % self.grad_accumulation:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by grad_accumulation {self.grad_accumulation}"
            )
        if self.micro_batch_size < 2:
            raise ValueError("each micro-batch needs at least 2 samples for the contrastive loss")
        return self

    @property
    def run_key(self) -> str:
        """Identity of what this configuration trains (device-independent)."""
        return stable_hash(
            MODEL_LOGIC_VERSION, self.model_dump(exclude={"device", "log_every_steps", "keep_checkpoints"})
        )


class EvaluationConfig(_Frozen):
    """Zero-shot, linear probe and partial-lead evaluation (method section 6)."""

    lead_subsets: tuple[str, ...] = Field(tuple(LEAD_SUBSETS), description="Names from kmerl.leads.LEAD_SUBSETS.")
    probe_fractions: tuple[float, ...] = Field(
        (0.01, 0.1, 1.0), description="Shares of the training labels the probe sees."
    )
    prompt_template: str = Field("{name}", description="Zero-shot text prompt; {name} is the class name.")
    min_test_positives: int = Field(3, gt=0, description="Classes with fewer positives in the test set are left out.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples of the test set for confidence intervals.")
    confidence: float = Field(0.95, gt=0, lt=1)
    probe_c: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic-regression probe.")
    batch_size: int = Field(64, gt=0, description="Records per forward pass when embedding.")
    untrained_reference: bool = Field(
        True,
        description="Also score the same architecture with untrained weights, and the paired difference: "
        "what pretraining added.",
    )
    supervised_reference: bool = Field(
        False,
        description="Also train the same architecture from scratch on the full probe's labels (not for cross-fitted "
        "archives). Comparisons always include it; on 2 CPU cores it adds ~3.5 min to the main evaluation.",
    )
    merl_reference: bool = Field(
        False,
        description="Also pretrain the MERL-style baseline (joint tokens, zero-filled leads, contrastive loss only) "
        "on the same feature store, budget and seed, and score it beside: a second full pretraining run, shared with "
        "model_comparison's first seed. Comparisons always include it.",
    )
    supervised_epochs: int = Field(10, gt=0, description="Epochs of the supervised reference over its labels.")
    supervised_learning_rate: float = Field(1e-3, gt=0)
    archive_folds: int = Field(
        5,
        ge=0,
        description="Archives the encoder never saw (kmerl evaluate, external_evaluation): every labelled record is "
        "scored, probes out of fold over this many folds by record; 0 keeps the archive's own fit/test split.",
    )
    rotation_folds: int = Field(
        5,
        ge=2,
        description="rotated_evaluation (python -m kmerl.model.rotation): folds the records are dealt into; one full "
        "pretraining per fold.",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _known_subsets(self) -> EvaluationConfig:
        if unknown := [name for name in self.lead_subsets if name not in LEAD_SUBSETS]:
            raise ValueError(f"unknown lead subsets {unknown}; known: {list(LEAD_SUBSETS)}")
        if bad := [f for f in self.probe_fractions if not 0 < f <= 1]:
            raise ValueError(f"probe fractions must be in (0, 1]: {bad}")
        if self.archive_folds == 1:
            raise ValueError("archive_folds: 0 (the archive's own split) or at least 2 folds")
        return self


class ComparisonConfig(_Frozen):
    """The comparison of pretraining variants (``model_comparison``, ``python -m kmerl.model.experiments``)."""

    seeds: tuple[int, ...] = Field(
        (0, 1, 2),
        min_length=1,
        description="Every variant is pretrained and evaluated once per seed; the tables give the mean and spread "
        "over seeds, and each paired difference per seed. Each seed adds the full training time of every variant.",
    )


class ModelConfig(_Frozen):
    """Everything after extraction: the feature store, pretraining and evaluation."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    training: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    comparison: ComparisonConfig = Field(default_factory=ComparisonConfig)
