"""FSQ index bijection and grid, Gumbel sampling, and build_quantizer specs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiotok.quantize import (
    FSQ,
    EMAVectorQuantizer,
    GroupedResidualQuantizer,
    GumbelQuantizer,
    IdentityQuantizer,
    ProductQuantizer,
    ResidualQuantizer,
    VectorQuantizer,
    build_quantizer,
)


@settings(max_examples=40, deadline=None)
@given(levels=st.lists(st.integers(2, 9), min_size=1, max_size=5), data=st.data())
def test_fsq_code_index_bijection(levels: list[int], data: st.DataObject) -> None:
    q = FSQ(levels)
    size = math.prod(levels)
    assert q.codebook_size == size
    codes = torch.tensor(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=20)))
    digits = q.codes_to_digits(codes)
    assert torch.all(digits >= 0) and torch.all(digits < torch.tensor(levels))
    assert torch.equal(q._digits_to_codes(digits), codes)
    # every code decodes to a point of the [-1, 1] grid
    grid = q.decode(codes)
    assert torch.all(grid.abs() <= 1.0)


def test_fsq_every_code_decodes_to_a_distinct_grid_point() -> None:
    q = FSQ([4, 3, 2])
    grid = q.decode(torch.arange(24))
    assert torch.unique(grid, dim=0).shape[0] == 24


def test_fsq_channel_levels_and_codes() -> None:
    q = FSQ([8, 5, 3])
    out = q(torch.randn(20000, 3) * 3)
    half_width = torch.tensor([4.0, 2.0, 1.0])
    steps = out.quantized * half_width
    assert torch.equal(steps, steps.round())
    for i, level in enumerate([8, 5, 3]):
        assert steps[:, i].unique().numel() == level
    assert float(out.metrics["usage"]) > 0.95
    torch.testing.assert_close(q.decode(out.codes), out.quantized)


def test_fsq_rejects_bad_levels() -> None:
    for bad in ([], [1, 4]):
        with pytest.raises(ValueError):
            FSQ(bad)


def test_gumbel_hard_samples_are_codebook_rows_and_temperature_anneals() -> None:
    q = GumbelQuantizer(6, 16, temperature=2.0).train()
    out = q(torch.randn(50, 6))
    torch.testing.assert_close(out.quantized, q.codebook[out.codes])
    q.temperature = 0.1  # a training loop anneals the attribute
    assert q(torch.randn(50, 6)).quantized.shape == (50, 6)
    z = torch.randn(30, 6, requires_grad=True)
    q(z).quantized.sum().backward()
    assert z.grad.abs().sum() > 0 and q.to_logits.weight.grad is not None
    q.eval()
    z = torch.randn(30, 6)
    assert torch.equal(q(z).codes, q.to_logits(z).argmax(dim=-1))


def test_gumbel_kl_is_zero_for_uniform_logits() -> None:
    q = GumbelQuantizer(4, 8, kl_weight=1.0)
    torch.nn.init.zeros_(q.to_logits.weight)
    torch.nn.init.zeros_(q.to_logits.bias)
    assert float(q(torch.randn(10, 4)).loss.detach()) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ({"type": "identity"}, IdentityQuantizer),
        (
            {"type": "vq", "codebook_size": 64, "codebook_dim": 8, "normalize": True},
            VectorQuantizer,
        ),
        ({"type": "ema", "codebook_size": 64, "dead_code_threshold": 0}, EMAVectorQuantizer),
        ({"type": "fsq", "levels": [8, 5, 5, 5]}, FSQ),
        ({"type": "gumbel", "codebook_size": 32, "temperature": 0.5}, GumbelQuantizer),
        (
            {
                "type": "residual",
                "num_codebooks": 8,
                "dropout": 1.0,
                "stage": {
                    "type": "ema",
                    "codebook_size": 1024,
                    "decay": 0.99,
                    "kmeans_init": True,
                    "dead_code_threshold": 2.0,
                },
            },
            ResidualQuantizer,
        ),
        (
            {"type": "product", "groups": 4, "stage": {"type": "vq", "codebook_size": 16}},
            ProductQuantizer,
        ),
        (
            {"type": "grouped_residual", "groups": 2, "num_codebooks": 3, "stage": {"type": "ema"}},
            GroupedResidualQuantizer,
        ),
    ],
)
def test_build_quantizer(spec: dict, kind: type) -> None:
    q = build_quantizer(spec, 32)
    assert type(q) is kind and q.dim == 32
    assert q(torch.randn(2, 3, 32)).quantized.shape == (2, 3, 32)


def test_build_quantizer_spec_details() -> None:
    rvq = build_quantizer(
        {"type": "residual", "num_codebooks": 8, "dropout": 1.0, "stage": {"type": "ema"}}, 16
    )
    assert rvq.num_codebooks == 8 and rvq.dropout == 1.0 and rvq.codebook_size == 1024
    stage = rvq.stages[0]
    assert stage.init is not None and stage.restart is not None and stage.restart.threshold == 2.0
    assert rvq.stages[0] is not rvq.stages[1]
    fsq = build_quantizer({"type": "fsq", "levels": [8, 5, 5, 5]}, 128)
    assert fsq.codebook_size == 1000 and fsq.dim == 128


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "vq", "codebok_size": 3},
        {"type": "nope"},
        {"codebook_size": 3},
        {"type": "residual", "stage": {"type": "vq", "bad_key": 1}},
        {"type": "residual"},
        {"type": "product", "groups": 3, "stage": {"type": "vq"}},
        "vq",
    ],
)
def test_build_quantizer_rejects_bad_specs(spec: object) -> None:
    with pytest.raises(ValueError):
        build_quantizer(spec, 16)  # type: ignore[arg-type]


def test_unknown_key_error_names_the_key() -> None:
    with pytest.raises(ValueError, match="codebok_size"):
        build_quantizer({"type": "vq", "codebok_size": 3}, 16)
