"""Opus round trips keep length, channels and sample alignment (skipped without opus-tools)."""

from __future__ import annotations

import numpy as np
import pytest

from audiotok.eval.opus import opus_available, opus_encode_decode, opus_roundtrip

needs_opus = pytest.mark.skipif(not opus_available(), reason="no Opus encoder installed")


def _si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    ref, est = ref.ravel().astype(np.float64), est.ravel().astype(np.float64)
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def _signal(sample_rate: int, channels: int, seconds: float = 0.7) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate) + 13) / sample_rate  # odd length on purpose
    tone = 0.4 * np.sin(2 * np.pi * 330.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
    noise = 0.02 * rng.standard_normal((channels, t.size))
    return (tone[None] + noise).astype(np.float32)


@needs_opus
@pytest.mark.parametrize(("sample_rate", "channels"), [(16000, 1), (24000, 2), (48000, 1)])
def test_roundtrip_keeps_length_and_alignment(sample_rate: int, channels: int) -> None:
    x = _signal(sample_rate, channels)
    y = opus_roundtrip(x, sample_rate, 64.0 * channels)
    assert y.shape == x.shape and y.dtype == np.float32
    # aligned: the best lag of the cross-correlation is 0 and the SI-SDR is high
    seg = slice(sample_rate // 10, sample_rate // 10 + 4000)
    corr = np.correlate(y[0, seg], x[0, seg], "full")
    assert int(corr.argmax()) - (4000 - 1) == 0
    assert _si_sdr(x, y) > 15.0
    # a deliberately shifted copy scores far worse, so the check above can fail
    assert _si_sdr(x[:, 40:], y[:, :-40]) < _si_sdr(x, y) - 10.0


@needs_opus
def test_quality_and_actual_bitrate_follow_the_target() -> None:
    x = _signal(24000, 1, seconds=1.5)
    low = opus_encode_decode(x, 24000, 6.0)
    high = opus_encode_decode(x, 24000, 96.0)
    assert _si_sdr(x, high.audio) > _si_sdr(x, low.audio)
    assert low.actual_kbps < high.actual_kbps
    assert 3.0 < low.actual_kbps < 12.0  # ~6 kbit/s plus Ogg overhead on a short clip


@needs_opus
def test_bitrate_is_clamped_to_opus_range() -> None:
    x = _signal(16000, 1, seconds=0.3)
    assert opus_encode_decode(x, 16000, 1.5).bitrate_kbps == 6.0
    with pytest.raises(ValueError, match="channels"):
        opus_roundtrip(np.zeros((9, 1600), np.float32), 16000, 64.0)


def test_no_backend_means_unavailable_and_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audiotok.eval.opus.shutil.which", lambda name: None)
    assert not opus_available()
    with pytest.raises(RuntimeError, match="no Opus encoder"):
        opus_roundtrip(np.zeros((1, 1600), np.float32), 16000, 12.0)
