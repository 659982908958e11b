"""Signal metrics (SI-SDR, mel/STFT distances, STOI/PESQ) and code statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiotok.eval import metrics as M

SR = 16000


def _speechlike(seconds: float = 1.0, batch: int = 2) -> torch.Tensor:
    """Amplitude-modulated harmonics, ``(B, 1, T)``: enough structure for STOI/PESQ."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * SR)) / SR
    out = []
    for b in range(batch):
        f0 = 120.0 + 40 * b
        x = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 12))
        env = 0.5 * (1 + torch.sin(2 * math.pi * 3.0 * t)) + 0.05 * torch.rand(t.shape, generator=g)
        out.append(0.1 * x * env)
    return torch.stack(out)[:, None]


def test_si_sdr_identical_is_large_and_finite() -> None:
    x = _speechlike()
    v = M.si_sdr(x, x)
    assert v.shape == (2,) and torch.isfinite(v).all() and (v > 100).all()
    assert M.si_sdr(torch.zeros(100), torch.zeros(100)).item() == pytest.approx(0.0)


def test_si_sdr_known_value_and_scale_invariance() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(48000, generator=g, dtype=torch.float64)
    noise = torch.randn(48000, generator=g, dtype=torch.float64)
    noise = noise - (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref
    noise = noise / noise.norm() * ref.norm() * 0.1  # 20 dB below the reference
    assert M.si_sdr(ref, ref + noise).item() == pytest.approx(20.0, abs=0.05)
    assert M.si_sdr(ref, 3.0 * (ref + noise)).item() == pytest.approx(20.0, abs=0.05)
    assert M.si_sdr(ref.numpy(), (ref + noise).numpy()).item() == pytest.approx(20.0, abs=0.05)


@pytest.mark.parametrize("fn", [M.mel_distance, M.stft_distance])
def test_distances_zero_for_identical_and_monotone_in_noise(fn) -> None:
    x = _speechlike()
    kw = {"sample_rate": SR} if fn is M.mel_distance else {}
    assert torch.allclose(fn(x, x, **kw), torch.zeros(2), atol=1e-6)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x.shape, generator=g)
    values = [fn(x, x + s * noise, **kw).mean().item() for s in (0.001, 0.01, 0.1)]
    assert values[0] < values[1] < values[2]
    assert fn(x[0, 0], (x + 0.01 * noise)[0, 0], **kw).dim() == 0


def test_mel_distance_sum_is_scales_times_mean() -> None:
    x = _speechlike(0.5, 1)
    y = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    mean = M.mel_distance(x, y, SR)
    total = M.mel_distance(x, y, SR, reduction="sum")
    assert torch.allclose(total, 7 * mean)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        M.si_sdr(torch.zeros(10), torch.zeros(11))


def test_stoi_and_pesq_rank_clean_above_noisy() -> None:
    if M.metric_unavailable_reason("stoi") or M.metric_unavailable_reason("pesq"):
        pytest.skip("pystoi / pesq not installed")
    x = _speechlike(2.0, 1)
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    s_clean, s_noisy = M.stoi(x, x, SR), M.stoi(x, noisy, SR)
    assert s_clean.shape == (1,) and s_clean.item() > s_noisy.item()
    p_clean, p_noisy = M.pesq(x, x, SR), M.pesq(x, noisy, SR)
    assert p_clean.item() > 4.0 and p_clean.item() > p_noisy.item()


def test_missing_optional_package_returns_none(monkeypatch) -> None:
    monkeypatch.setattr(M, "metric_unavailable_reason", lambda name: "not installed")
    x = torch.zeros(SR)
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert M.pesq(x, x, SR) is None
        assert M.stoi(x, x, SR) is None and M.visqol(x, x, SR) is None


def test_codebook_usage_and_entropy() -> None:
    k = 16
    uniform = torch.arange(k).repeat(3).reshape(1, 1, -1)  # every code equally often
    constant = torch.zeros(1, 1, 48, dtype=torch.long)
    half = torch.arange(k // 2).repeat(6).reshape(1, 1, -1)
    codes = torch.cat([uniform, constant, half], dim=1)  # (B=1, K=3, T=48)
    assert M.codebook_usage(codes, k).tolist() == [1.0, 1 / k, 0.5]
    assert torch.allclose(M.codebook_entropy_bits(codes, k), torch.tensor([4.0, 0.0, 3.0]))
    batched = codes.repeat(4, 1, 1).numpy()
    assert torch.allclose(M.codebook_entropy_bits(batched, k), torch.tensor([4.0, 0.0, 3.0]))
    assert M.codebook_usage(np.array([0, 1]), k).shape == (1,)
    with pytest.raises(ValueError, match="codes must be in"):
        M.codebook_usage(torch.tensor([k]), k)


def test_bitrate() -> None:
    assert M.bitrate(75.0, 8, 1024) == 6.0  # kbps
    assert M.bitrate(50, 4, 2**12) == 2.4
