import math

import numpy as np
import pytest
import torch

from kmerl.features import FeatureStore
from kmerl.features.dataset import FeatureDataset
from kmerl.leads import LEAD_SUBSETS, lead_mask
from kmerl.model.config import EncoderConfig, MaskingConfig, ObjectiveConfig, TrainConfig
from kmerl.model.encoder import EcgEncoder
from kmerl.model.losses import contrastive_loss, knowledge_loss
from kmerl.model.masking import drop_leads, mask_segments, patch_validity
from kmerl.model.network import KmerlModel

SMALL = EncoderConfig(width=32, depth=2, heads=4, embed_dim=24)
SHAPE = SMALL.input_shape(fs=100, samples=1000)  # the fixtures' feature store: 10 s at 100 Hz


@pytest.fixture(scope="module")
def batch(feature_store: FeatureStore) -> dict[str, torch.Tensor]:
    """Eight real training rows, all twelve leads present."""
    split = feature_store.split("train")
    full = np.flatnonzero(split.column("lead_mask").all(axis=1))[:8]
    return FeatureDataset(split, full).__getitems__(list(range(8)))


@pytest.mark.parametrize("tokenizer", ["per_lead", "joint"])
@pytest.mark.parametrize("subset", list(LEAD_SUBSETS))
def test_every_lead_subset_gives_finite_outputs_of_the_right_shape(
    batch: dict[str, torch.Tensor], subset: str, tokenizer: str
) -> None:
    torch.manual_seed(0)
    encoder = EcgEncoder(SMALL.model_copy(update={"tokenizer": tokenizer}), SHAPE).eval()
    mask = torch.tensor(lead_mask(LEAD_SUBSETS[subset])).expand(8, -1)
    with torch.no_grad():
        output = encoder(batch["signal"], mask)
    assert output.features.shape == (8, 32) and output.embedding.shape == (8, 24)
    assert torch.isfinite(output.features).all() and torch.isfinite(output.embedding).all()
    patches = SHAPE.patches
    expected_tokens = len(LEAD_SUBSETS[subset]) * patches if tokenizer == "per_lead" else patches
    assert output.tokens.shape[1] == expected_tokens and not output.padding.any()


@pytest.mark.parametrize("tokenizer", ["per_lead", "joint"])
def test_absent_leads_do_not_change_the_output_whatever_they_hold(
    batch: dict[str, torch.Tensor], tokenizer: str
) -> None:
    torch.manual_seed(0)
    encoder = EcgEncoder(SMALL.model_copy(update={"tokenizer": tokenizer}), SHAPE).eval()
    mask = torch.tensor(lead_mask(LEAD_SUBSETS["limb3"])).expand(8, -1).clone()
    mask[0, 1] = False  # one sample sees lead I and III only: padding inside the batch
    signal = batch["signal"].clone()
    with torch.no_grad():
        reference = encoder(signal, mask)
        for garbage in (
            torch.randn_like(signal) * 1e6,
            torch.full_like(signal, float("inf")),
            torch.full_like(signal, float("nan")),
        ):
            changed = torch.where(mask[..., None], signal, garbage)
            output = encoder(changed, mask)
            assert torch.equal(output.embedding, reference.embedding)
            assert torch.equal(output.features, reference.features)
    # present leads do matter
    altered = signal.clone()
    altered[:, 0] *= -1
    with torch.no_grad():
        assert not torch.allclose(encoder(altered, mask).embedding, reference.embedding)


def test_nan_padding_and_partly_missing_patches_are_not_tokens(batch: dict[str, torch.Tensor]) -> None:
    signal = batch["signal"].clone()
    signal[0, :, 950:] = float("nan")  # a record shorter than the window: 5 patches of padding
    signal[1, 2, 3] = float("nan")  # one bad sample spoils one patch of one lead
    encoder = EcgEncoder(SMALL, SHAPE).eval()
    mask = torch.ones(8, 12, dtype=torch.bool)
    with torch.no_grad():
        output = encoder(signal, mask)
    counts = (~output.padding).sum(dim=1)
    assert counts[0] == 12 * 95 and counts[1] == 12 * 100 - 1 and counts[2] == 12 * 100
    assert torch.isfinite(output.embedding).all()


def test_patches_follow_the_sampling_rate_and_must_tile_the_record() -> None:
    assert SMALL.input_shape(fs=100, samples=1000).patch_size == 10
    assert SMALL.input_shape(fs=500, samples=5000).patch_size == 50
    assert SMALL.input_shape(fs=360, samples=3600).patches == 100
    with pytest.raises(ValueError, match=r"patch_seconds = 0.03 is 7.5 samples at 250 Hz"):
        SMALL.model_copy(update={"patch_seconds": 0.03}).input_shape(fs=250, samples=2500)
    with pytest.raises(ValueError, match=r"2505 samples .*ingest.preprocess.window_seconds"):
        SMALL.input_shape(fs=250, samples=2505)


def test_dynamic_lead_masking_keeps_at_least_one_present_lead() -> None:
    torch.manual_seed(1)
    present = torch.rand(64, 12) < 0.8
    present[torch.arange(64), torch.randint(0, 12, (64,))] = True
    dropped_ever = torch.zeros(12, dtype=torch.bool)
    counts_seen = set()
    for _ in range(50):
        kept = drop_leads(present, min_kept=1)
        assert not (kept & ~present).any()  # never invents a lead
        per_sample = kept.sum(dim=1)
        assert (per_sample >= 1).all()
        # one count per batch, capped by what a sample has
        target = int(per_sample.max())
        assert torch.equal(per_sample, torch.minimum(present.sum(dim=1), torch.tensor(target)))
        counts_seen.add(target)
        dropped_ever |= (present & ~kept).any(dim=0)
    assert dropped_ever.all() and len(counts_seen) > 6


def test_segment_masking_hides_a_quarter_of_each_lead_independently() -> None:
    torch.manual_seed(2)
    valid = torch.ones(4, 12, 100, dtype=torch.bool)
    valid[0, 3, 80:] = False  # a lead with 80 valid patches
    valid[1, 5] = False  # an absent lead
    keep = mask_segments(valid, 0.25)
    assert not (keep & ~valid).any()
    hidden = (valid & ~keep).sum(dim=-1)
    assert hidden[0, 3] == 20 and hidden[1, 5] == 0
    assert (hidden[2] == 25).all()
    # chosen per lead: no two leads of a sample share the same hidden patches
    patterns = {tuple(torch.nonzero(~keep[2, lead]).flatten().tolist()) for lead in range(12)}
    assert len(patterns) == 12


def test_the_encoder_uses_only_kept_patches(batch: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(3)
    mask = torch.ones(8, 12, dtype=torch.bool)
    keep = mask_segments(patch_validity(batch["signal"], mask, SHAPE.patch_size), 0.25)
    with torch.no_grad():
        output = EcgEncoder(SMALL, SHAPE).eval()(batch["signal"], mask, keep)
    assert ((~output.padding).sum(dim=1) == 12 * 75).all()


def test_query_logits_do_not_depend_on_the_other_queries(
    feature_store: FeatureStore, batch: dict[str, torch.Tensor]
) -> None:
    torch.manual_seed(4)
    entities = torch.from_numpy(feature_store.entities().embeddings.copy())
    model = KmerlModel(
        TrainConfig(encoder=SMALL, objective=ObjectiveConfig(query_heads=4)), SHAPE, 384, entities
    ).eval()
    with torch.no_grad():
        output = model.encode_ecg(batch["signal"], batch["lead_mask"])
        together = model.query_logits(output, entities[:10])
        alone = model.query_logits(output, entities[3:4])
    torch.testing.assert_close(together[:, 3:4], alone, rtol=1e-5, atol=1e-6)


def test_contrastive_loss_is_symmetric_clip_and_knowledge_loss_is_bce() -> None:
    torch.manual_seed(5)
    ecg, text = torch.randn(6, 8), torch.randn(6, 8)
    scale = torch.tensor(math.log(1 / 0.07))
    logits = torch.nn.functional.normalize(ecg, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T / 0.07
    expected = -(torch.log_softmax(logits, 1).diag().mean() + torch.log_softmax(logits, 0).diag().mean()) / 2
    torch.testing.assert_close(contrastive_loss(ecg, text, scale), expected)
    torch.testing.assert_close(contrastive_loss(ecg, text, scale), contrastive_loss(text, ecg, scale))
    aligned = contrastive_loss(text * 3, text, scale)
    assert aligned < contrastive_loss(ecg, text, scale)

    logit, target = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    expected_bce = -(math.log(1 / (1 + math.exp(-2.0))) + math.log(1 - 1 / (1 + math.exp(1.0)))) / 2
    assert knowledge_loss(logit, target).item() == pytest.approx(expected_bce)


def test_both_losses_fall_when_overfitting_one_batch(
    feature_store: FeatureStore, batch: dict[str, torch.Tensor]
) -> None:
    torch.manual_seed(6)
    entities = torch.from_numpy(feature_store.entities().embeddings.copy())
    config = TrainConfig(
        encoder=SMALL,
        masking=MaskingConfig(lead_masking=False, segment_ratio=0.0),
        objective=ObjectiveConfig(query_heads=4),
    )
    model = KmerlModel(config, SHAPE, 384, entities).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    limb = batch | {"lead_mask": torch.tensor(lead_mask(LEAD_SUBSETS["limb3"])).expand(8, -1)}  # fewer tokens: fast
    first = model(limb)
    for _ in range(30):
        losses = model(limb)
        optimizer.zero_grad()
        losses.total.backward()
        optimizer.step()
    last = model(limb)
    assert last.contrastive < 0.5 * first.contrastive
    assert last.knowledge < 0.5 * first.knowledge


def test_training_forward_applies_the_masks_and_eval_does_not(
    feature_store: FeatureStore, batch: dict[str, torch.Tensor]
) -> None:
    entities = torch.from_numpy(feature_store.entities().embeddings.copy())
    model = KmerlModel(TrainConfig(encoder=SMALL, objective=ObjectiveConfig(query_heads=4)), SHAPE, 384, entities)
    seen: list[int] = []
    model.encoder.transformer.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape[1]))
    torch.manual_seed(7)
    model.train()(batch)
    model.eval()(batch)
    assert seen[0] <= 12 * 75 and seen[0] % 75 == 0  # k leads kept, a quarter of each kept lead masked
    assert seen[1] == 12 * 100
