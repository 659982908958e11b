"""The quantizer contract, parametrised over every quantizer in audiotok.quantize."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from audiotok.quantize import (
    FSQ,
    DeadCodeRestart,
    EMAVectorQuantizer,
    GroupedResidualQuantizer,
    GumbelQuantizer,
    IdentityQuantizer,
    KMeansInit,
    ProductQuantizer,
    Quantizer,
    ResidualQuantizer,
    VectorQuantizer,
)

D = 8

FACTORIES: dict[str, Callable[[], Quantizer]] = {
    "vq": lambda: VectorQuantizer(D, 32),
    "vq_factorised_cosine": lambda: VectorQuantizer(D, 32, codebook_dim=4, normalize=True),
    "ema": lambda: EMAVectorQuantizer(
        D, 32, init=KMeansInit(iters=3), restart=DeadCodeRestart(threshold=1.0)
    ),
    "ema_plain": lambda: EMAVectorQuantizer(D, 32),
    "residual_vq": lambda: ResidualQuantizer.from_factory(lambda: VectorQuantizer(D, 32), 3),
    "residual_ema_dropout": lambda: ResidualQuantizer.from_factory(
        lambda: EMAVectorQuantizer(D, 32, init=KMeansInit(iters=3)), 3, dropout=0.5
    ),
    "residual_factorised_dropout": lambda: ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 32, codebook_dim=2), 2, dropout=0.5
    ),
    "product": lambda: ProductQuantizer(D, 2, lambda d: VectorQuantizer(d, 32)),
    "grouped_residual": lambda: GroupedResidualQuantizer(
        D, 2, lambda d: EMAVectorQuantizer(d, 32), 2, dropout=0.5
    ),
    "fsq": lambda: FSQ([4, 4, 3, 3, 2, 2, 2, 2]),
    "fsq_projected": lambda: FSQ([8, 5, 5, 5], dim=D),
    "gumbel": lambda: GumbelQuantizer(D, 32),
}
# the gradient of `quantized` with respect to z is exactly the identity for these
IDENTITY_GRADIENT = {
    "vq",
    "ema",
    "ema_plain",
    "residual_vq",
    "residual_ema_dropout",
    "residual_factorised_dropout",
    "product",
    "grouped_residual",
}
LAYOUTS = [(4, 10, D), (2, 3, 5, D), (2, 2, 3, 2, D)]  # (B,T,D), (B,H,W,D), (B,F,H,W,D)

names = pytest.mark.parametrize("name", sorted(FACTORIES))


def trained(name: str, steps: int = 2) -> Quantizer:
    """A quantizer after a couple of training forwards (initialised codebooks)."""
    q = FACTORIES[name]().train()
    for _ in range(steps):
        q(torch.randn(8, 16, D))
    return q.eval()


@names
@pytest.mark.parametrize("shape", LAYOUTS, ids=["1d", "2d", "3d"])
def test_eval_decode_encode_matches_forward(name: str, shape: tuple[int, ...]) -> None:
    q = trained(name)
    z = torch.randn(shape)
    out = q(z)
    codes = q.encode(z)
    assert torch.equal(codes, out.codes)
    assert codes.dtype == torch.long
    lead = shape[:-1] + ((q.num_codebooks,) if q.codes_have_codebook_dim else ())
    assert codes.shape == lead
    assert int(codes.min()) >= 0 and int(codes.max()) < q.codebook_size
    assert out.quantized.shape == shape
    torch.testing.assert_close(q.decode(codes), out.quantized, rtol=1e-6, atol=1e-6)


@names
def test_train_forward_loss_and_metrics(name: str) -> None:
    q = FACTORIES[name]().train()
    z = torch.randn(4, 12, D, requires_grad=True)
    out = q(z)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    (out.quantized.square().mean() + out.loss).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    m = out.metrics
    assert {"perplexity", "usage", "counts"} <= set(m)
    counts = m["counts"].reshape(-1, q.codebook_size)
    assert counts.shape[0] == q.num_codebooks
    assert float(m["usage"]) > 0 and 1.0 <= float(m["perplexity"]) <= q.codebook_size
    if "dropout" not in name and name != "grouped_residual":  # dropout skips rows
        assert torch.all(counts.sum(dim=1) == 4 * 12)  # every vector counted once per codebook
    assert all(not v.requires_grad for v in m.values())


@pytest.mark.parametrize("name", sorted(IDENTITY_GRADIENT))
def test_straight_through_gradient_is_identity(name: str) -> None:
    q = trained(name).train()
    z = torch.randn(3, 7, D, requires_grad=True)
    upstream = torch.randn(3, 7, D)
    (out_grad,) = torch.autograd.grad(q(z).quantized, z, upstream)
    torch.testing.assert_close(out_grad, upstream, rtol=0, atol=0)


def test_fsq_gradient_passes_through_the_bound_only() -> None:
    # FSQ rounds with straight-through but keeps tanh: dq/dz = bound'(z) / half_width
    q = FSQ([8, 5, 5, 5])
    z = torch.randn(6, 4, requires_grad=True)
    (grad,) = torch.autograd.grad(q(z).quantized.sum(), z)
    zz = z.detach().clone().requires_grad_()
    half_width = torch.tensor([4.0, 2.0, 2.0, 2.0])
    (expected,) = torch.autograd.grad((q.bound(zz) / half_width).sum(), zz)
    torch.testing.assert_close(grad, expected)


@names
def test_state_dict_roundtrip_reproduces_codes(name: str, tmp_path) -> None:
    q = trained(name)
    path = tmp_path / "q.safetensors"
    save_file({k: v.contiguous() for k, v in q.state_dict().items()}, str(path))
    torch.manual_seed(123)  # a differently initialised fresh copy
    fresh = FACTORIES[name]()
    fresh.load_state_dict(load_file(str(path)))
    fresh.eval()
    z = torch.randn(4, 9, D)
    assert torch.equal(fresh.encode(z), q.encode(z))
    torch.testing.assert_close(fresh(z).quantized, q(z).quantized)


@names
def test_bad_inputs_raise_value_error(name: str) -> None:
    q = trained(name, steps=1)
    bad_inputs = [
        torch.randn(2, 5, D + 1),
        torch.ones(2, 5, D, dtype=torch.long),
        torch.randn(D),
        torch.full((2, 5, D), float("nan")),
        torch.full((2, 5, D), float("inf")),
    ]
    for z in bad_inputs:
        with pytest.raises(ValueError):
            q(z)
        with pytest.raises(ValueError):
            q.encode(z)
    codes = q.encode(torch.randn(2, 5, D))
    with pytest.raises(ValueError):
        q.decode(codes.float())
    with pytest.raises(ValueError):
        q.decode(codes + q.codebook_size)
    with pytest.raises(ValueError):
        q.decode(codes - q.codebook_size)
    if q.codes_have_codebook_dim:
        with pytest.raises(ValueError):
            q.decode(torch.cat([codes, codes], dim=-1))  # too many codebooks
    else:
        with pytest.raises(ValueError):
            q.decode(torch.tensor(0))


@names
def test_autocast_bf16_still_quantizes_in_fp32(name: str) -> None:
    q = trained(name)
    z = torch.randn(4, 16, D)
    reference = q.encode(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q.encode(z), reference)
        out = q(z)
    assert torch.equal(out.codes, reference)
    assert out.quantized.dtype == torch.float32
    # a bf16 input is upcast, never quantized in bf16
    zb = z.bfloat16()
    assert torch.equal(q.encode(zb), q.encode(zb.float()))
    assert q(zb).quantized.dtype == torch.bfloat16


def test_identity_quantizer_passes_through() -> None:
    q = IdentityQuantizer(D)
    z = torch.randn(2, 3, D)
    out = q(z)
    assert torch.equal(out.quantized, z) and float(out.loss) == 0.0
    assert out.codes.shape == (2, 3)


@pytest.mark.parametrize(
    ("spec", "partial"),
    [
        ({"type": "vq", "codebook_size": 8}, True),  # one codebook: its only prefix is whole
        ({"type": "fsq", "levels": [3, 3]}, True),
        ({"type": "product", "groups": 2, "stage": {"type": "vq", "codebook_size": 8}}, False),
        (
            {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 8}},
            True,
        ),
        (
            {
                "type": "grouped_residual",
                "groups": 2,
                "num_codebooks": 2,
                "stage": {"type": "vq", "codebook_size": 8},
            },
            True,
        ),
    ],
)
def test_partial_codebooks_are_declared_and_enforced(spec, partial) -> None:
    import numpy as np

    from audiotok.quantize import build_quantizer

    q = build_quantizer(spec, dim=4).eval()
    assert q.supports_partial_codebooks is partial
    z = torch.randn(2, 5, 4)
    k_all = q.num_codebooks
    # numpy integers are integers; the full count is always accepted
    full = q.encode(z, num_codebooks=np.int64(k_all))
    torch.testing.assert_close(full, q.encode(z))
    smallest = 2 if spec["type"] == "grouped_residual" else 1
    if k_all > smallest:
        if partial:
            codes = q.encode(z, num_codebooks=smallest)
            assert codes.shape[-1] == smallest
            torch.testing.assert_close(codes, full[..., :smallest])
        else:
            with pytest.raises(ValueError, match="needs all"):
                q.encode(z, num_codebooks=smallest)
    for bad in (0, k_all + 1, True, 1.0):
        with pytest.raises(ValueError):
            q.encode(z, num_codebooks=bad)
