"""Sampling filters: allowed sets, greedy limits, guidance definition, seeding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiotok.prior import apply_cfg, sample, top_k_filter, top_p_filter


def _logits(seed: int, shape=(4, 3, 16)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 16))
def test_top_k_never_samples_outside_the_k_best(seed: int, k: int) -> None:
    logits = _logits(seed)
    allowed = logits >= logits.topk(k, dim=-1).values[..., -1:]
    g = torch.Generator().manual_seed(seed)
    for _ in range(20):
        drawn = sample(logits, temperature=2.0, top_k=k, generator=g)
        assert bool(allowed.gather(-1, drawn[..., None]).all())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_nucleus(seed: int, p: float) -> None:
    logits = _logits(seed)
    probs = logits.softmax(-1)
    kept = top_p_filter(logits, p) > float("-inf")
    for row_p, row_kept in zip(probs.view(-1, 16), kept.view(-1, 16), strict=True):
        order = row_p.argsort(descending=True)
        n = int(row_kept.sum())
        assert bool(row_kept[order[:n]].all()), "the nucleus is the most likely codes"
        assert float(row_p[order[:n]].sum()) >= p - 1e-6  # reaches p
        assert n == 1 or float(row_p[order[: n - 1]].sum()) < p + 1e-6  # and is the smallest
    g = torch.Generator().manual_seed(seed)
    drawn = sample(logits, top_p=p, generator=g)
    assert bool(kept.gather(-1, drawn[..., None]).all())


def test_greedy_limits_and_masked_codes() -> None:
    logits = _logits(0)
    best = logits.argmax(-1)
    assert torch.equal(sample(logits, temperature=0.0), best)
    assert torch.equal(sample(logits, top_k=1), best)
    assert torch.equal(sample(logits, top_p=1e-6), best)
    masked = logits.clone()
    masked[..., :15] = float("-inf")
    assert bool((sample(masked, temperature=5.0) == 15).all()), "-inf codes are never drawn"
    assert torch.equal(top_k_filter(logits, 99), logits) and torch.equal(
        top_p_filter(logits, 1.0), logits
    )


def test_seeded_sampling_reproduces() -> None:
    logits = _logits(1)
    a = sample(logits, generator=torch.Generator().manual_seed(5))
    b = sample(logits, generator=torch.Generator().manual_seed(5))
    c = sample(logits, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_cfg_definition() -> None:
    cond, uncond = _logits(2), _logits(3)
    torch.testing.assert_close(apply_cfg(cond, uncond, 1.0), cond)
    torch.testing.assert_close(apply_cfg(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(apply_cfg(cond, uncond, 3.0), uncond + 3 * (cond - uncond))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="top_k"):
        sample(_logits(0), top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        sample(_logits(0), top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        sample(_logits(0), temperature=-1.0)
