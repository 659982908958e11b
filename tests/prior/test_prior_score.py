"""Count baselines: known entropies on constructed codes, fitted vs scored data."""

from __future__ import annotations

import math

import pytest
import torch

from audiotok.prior import bigram_bits, unigram_bits


def test_unigram_of_uniform_codes_is_log2_v() -> None:
    codes = torch.arange(8).repeat(2, 2, 4)  # (2, 2, 32): every code equally often
    report = unigram_bits(codes, 8, alpha=0.0, frame_rate=50.0)
    assert report["bits_per_codebook"] == pytest.approx([3.0, 3.0])
    assert report["bits_per_frame"] == pytest.approx(6.0)
    assert report["kbps"] == pytest.approx(6.0 * 50 / 1000)


def test_bigram_sees_a_deterministic_cycle() -> None:
    codes = torch.arange(4).repeat(1, 3, 50)  # 0 1 2 3 0 1 2 3 ...
    uni = unigram_bits(codes, 4, alpha=0.0)
    bi = bigram_bits(codes, 4, alpha=0.0)
    assert uni["bits_per_frame"] == pytest.approx(3 * 2.0)
    # only frame 0 costs bits (2 per codebook), spread over 200 frames
    assert bi["bits_per_frame"] == pytest.approx(3 * 2.0 / 200)


def test_fitting_on_other_codes_and_smoothing() -> None:
    train = torch.zeros(1, 1, 10, dtype=torch.long)
    dev = torch.ones(1, 1, 10, dtype=torch.long)
    report = unigram_bits(dev, 2, fit=train, alpha=1.0)
    assert report["bits_per_frame"] == pytest.approx(-math.log2(1 / 12))
    assert math.isfinite(bigram_bits(dev, 2, fit=train, alpha=0.5)["bits_per_frame"])
    with pytest.raises(ValueError, match="0..1"):
        unigram_bits(dev + 1, 2)
    assert bigram_bits(torch.zeros(1, 2, 0, dtype=torch.long), 2)["bits_per_frame"] == 0.0
