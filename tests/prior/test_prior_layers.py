"""The shared blocks: RoPE is relative, attention is order-aware, the cache is static."""

from __future__ import annotations

import pytest
import torch
from tiny_priors import K, V, tiny_gpt

from audiotok.prior import parallel
from audiotok.prior.layers import RotaryEmbedding, apply_rope


def test_rope_scores_depend_on_relative_position_only() -> None:
    rope = RotaryEmbedding(16, 64)
    q = torch.randn(1, 1, 1, 16, generator=torch.Generator().manual_seed(0))
    k = q.clone()

    def score(m: int, n: int) -> float:
        qm = apply_rope(q, *rope(torch.tensor([m])))
        kn = apply_rope(k, *rope(torch.tensor([n])))
        return float((qm * kn).sum())

    assert score(7, 3) == pytest.approx(score(30, 26), abs=1e-5)
    assert score(5, 5) - score(7, 5) > 0.1  # q = k: distance 0 is the maximum, |q|^2
    assert score(5, 5) == pytest.approx(float(q.square().sum()), rel=1e-5)
    rotated = apply_rope(q, *rope(torch.tensor([11])))
    assert float(rotated.norm()) == pytest.approx(float(q.norm()), rel=1e-5)  # a rotation
    with pytest.raises(ValueError, match="position"):
        rope(torch.tensor([64]))


def test_the_prior_sees_the_order_of_steps() -> None:
    # causal attention without positions is blind to the order of earlier steps
    model = tiny_gpt(parallel(K))
    seq = torch.randint(0, V, (1, K, 6))
    swapped = seq[:, :, [1, 0, 2, 3, 4, 5]]
    assert not torch.allclose(model(seq)[..., 5, :], model(swapped)[..., 5, :], atol=1e-4)


def test_cache_is_preallocated_and_filled_in_place() -> None:
    model = tiny_gpt(parallel(K))
    like = torch.zeros(())
    cache = model.transformer.new_cache(2, 5, like)
    assert cache.keys.shape == (2, 2, 2, 5, 16) and cache.capacity == 5
    storage = cache.keys.data_ptr()
    x = torch.randn(2, 5, 32)
    model.transform(x[:, :3], torch.arange(3), cache=cache)
    model.transform(x[:, 3:], torch.arange(3, 5), cache=cache)
    assert cache.length == 5 and cache.keys.data_ptr() == storage
    with pytest.raises(ValueError, match="cannot hold"):
        model.transform(x[:, :1], torch.tensor([5]), cache=cache)


def test_weight_decay_groups_split_matrices_from_vectors() -> None:
    from audiotok.prior import weight_decay_groups

    model = tiny_gpt(parallel(K))
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(
        p.dim() < 2 for p in no_decay["params"]
    )
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_bfloat16_prior_trains_and_generates() -> None:
    model = tiny_gpt(parallel(K)).to(torch.bfloat16)
    codes = torch.randint(0, V, (2, K, 5))
    loss, _ = model.train().loss(codes)
    loss.backward()
    assert torch.isfinite(loss)
    out = model.generate(4, prompt=codes, top_k=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, K, 4) and bool(((out >= 0) & (out < V)).all())
