import numpy as np
import pytest

from kmerl.leads import LEAD_INDEX, STANDARD_LEADS
from kmerl.preprocess import LengthPolicy, PreprocessConfig, Window, plan_window, preprocess_signal
from kmerl.preprocess.channels import select_channels
from kmerl.preprocess.quality import lead_quality_issue
from kmerl.preprocess.repair import repair_lead
from kmerl.preprocess.resample import resample
from kmerl.records import Reason, RecordError

CONFIG = PreprocessConfig()
PTBXL_ORDER = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def ecg_like(samples: int, fs: float, channels: int = 12, seed: int = 0) -> np.ndarray:
    """Sinusoids of different frequencies and amplitudes per channel, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / fs
    freqs = rng.uniform(0.8, 8.0, channels)
    return np.stack([np.sin(2 * np.pi * f * t) * (0.3 + c / 10) for c, f in enumerate(freqs)], axis=1) + rng.normal(
        0, 0.01, (samples, channels)
    )


@pytest.mark.parametrize(
    ("sig_len", "fs", "anchor", "expected"),
    [
        (1000, 100, "start", Window(0, 1000, LengthPolicy.EXACT)),
        (38400, 1000, "start", Window(0, 10000, LengthPolicy.CROPPED)),
        (38400, 1000, "center", Window(14200, 24200, LengthPolicy.CROPPED)),
        (3000, 500, "start", Window(0, 3000, LengthPolicy.PADDED)),
    ],
)
def test_plan_window(sig_len: int, fs: float, anchor: str, expected: Window) -> None:
    assert plan_window(sig_len, fs, CONFIG.model_copy(update={"crop_anchor": anchor})) == expected


@pytest.mark.parametrize(("sig_len", "reason"), [(0, Reason.ZERO_LENGTH_SIGNAL), (400, Reason.TOO_SHORT)])
def test_plan_window_rejects_empty_and_short(sig_len: int, reason: Reason) -> None:
    with pytest.raises(RecordError) as caught:
        plan_window(sig_len, 100, CONFIG)
    assert caught.value.reason is reason


def test_channels_map_by_name_not_position() -> None:
    mimic_order = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    selection = select_channels(mimic_order)
    assert selection.lead_channels["aVL"] == 5 and selection.lead_channels["aVF"] == 4
    frank = select_channels([*map(str.lower, PTBXL_ORDER), "vx", "vy", "vz"])
    assert len(frank.lead_channels) == 12 and frank.dropped == ("vx", "vy", "vz")
    holter = select_channels(["MLII", "V5", "foo"])
    assert holter.lead_channels == {"II": 0, "V5": 1} and holter.dropped == ("foo",)


@pytest.mark.parametrize(
    ("names", "reason", "named"),
    [(["I", "II", "ii"], Reason.DUPLICATE_LEADS, "'ii'"), (["foo", "bar"], Reason.NO_STANDARD_LEADS, "foo")],
)
def test_channels_reject_ambiguous_or_unknown(names: list[str], reason: Reason, named: str) -> None:
    with pytest.raises(RecordError) as caught:
        select_channels(names)
    assert caught.value.reason is reason and named in caught.value.detail


def test_short_gaps_are_interpolated_long_ones_reported() -> None:
    lead = np.linspace(0, 1, 100)
    gappy = lead.copy()
    gappy[[10, 11, 12, 50]] = [np.nan, np.inf, np.nan, -np.inf]
    repaired = repair_lead(gappy, max_gap=5)
    assert repaired.issue is None and repaired.interpolated == 4
    np.testing.assert_allclose(repaired.samples, lead)

    gappy[20:40] = np.nan
    assert "too long" in (repair_lead(gappy, max_gap=5).issue or "")
    assert "all samples" in (repair_lead(np.full(10, np.nan), max_gap=5).issue or "")


def test_flat_and_clipped_leads_are_detected() -> None:
    ecg = ecg_like(1000, 100, channels=1)[:, 0]
    assert lead_quality_issue(ecg, CONFIG) is None
    assert (lead_quality_issue(np.full(1000, 0.3), CONFIG) or "").startswith("flat")
    assert (lead_quality_issue(np.clip(ecg * 5, -1, 1), CONFIG) or "").startswith("saturated")


def test_resample_keeps_a_tone_and_the_duration() -> None:
    t = np.arange(3600) / 360
    tone = np.sin(2 * np.pi * 5 * t)[:, None]
    out = resample(tone, 360, 100)
    assert out.shape == (1000, 1)
    expected = np.sin(2 * np.pi * 5 * np.arange(1000) / 100)
    assert np.abs(out[50:-50, 0] - expected[50:-50]).max() < 0.01


def test_preprocess_marks_absent_leads_with_nan_and_the_mask() -> None:
    raw = ecg_like(5000, 500)
    raw[:, PTBXL_ORDER.index("V3")] = 0.0  # flat lead
    raw[:, PTBXL_ORDER.index("V5")] = np.nan  # no data
    names = [n for i, n in enumerate(PTBXL_ORDER) if n != "AVR"]  # lead missing from the source
    raw = np.delete(raw, PTBXL_ORDER.index("AVR"), axis=1)
    ecg = preprocess_signal(raw, names, 500, Window(0, 5000, LengthPolicy.EXACT), CONFIG)
    absent = {"aVR", "V3", "V5"}
    assert ecg.signal.shape == (12, 1000) and ecg.signal.dtype == np.float32
    assert [lead for lead in STANDARD_LEADS if not ecg.lead_mask[LEAD_INDEX[lead]]] == ["aVR", "V3", "V5"]
    assert np.isnan(ecg.signal[~ecg.lead_mask]).all() and np.isfinite(ecg.signal[ecg.lead_mask]).all()
    assert {issue.lead for issue in ecg.lead_issues} == absent - {"aVR"}


def test_preprocess_pads_short_records_and_counts_valid_samples() -> None:
    ecg = preprocess_signal(ecg_like(3000, 500), PTBXL_ORDER, 500, Window(0, 3000, LengthPolicy.PADDED), CONFIG)
    assert ecg.valid_samples == 600 and ecg.length_policy is LengthPolicy.PADDED
    assert np.isnan(ecg.signal[:, 600:]).all() and np.isfinite(ecg.signal[:, :600]).all()


def test_preprocess_rejects_records_with_too_much_missing() -> None:
    raw = ecg_like(1000, 100)
    raw[:, :7] = np.nan
    with pytest.raises(RecordError) as caught:
        preprocess_signal(raw, PTBXL_ORDER, 100, Window(0, 1000, LengthPolicy.EXACT), CONFIG)
    assert caught.value.reason is Reason.TOO_MUCH_MISSING and "58%" in caught.value.detail


def test_preprocess_rejects_records_with_no_usable_lead() -> None:
    with pytest.raises(RecordError) as caught:
        preprocess_signal(np.zeros((1000, 2)), ["I", "II"], 100, Window(0, 1000, LengthPolicy.EXACT), CONFIG)
    assert caught.value.reason is Reason.NO_USABLE_LEADS and "I: flat" in caught.value.detail
