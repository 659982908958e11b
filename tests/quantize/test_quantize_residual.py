"""ResidualQuantizer: partial bitrates, quantizer dropout, gradient paths."""

from __future__ import annotations

import copy

import pytest
import torch

from audiotok.quantize import (
    FSQ,
    EMAVectorQuantizer,
    GroupedResidualQuantizer,
    KMeansInit,
    ProductQuantizer,
    ResidualQuantizer,
    VectorQuantizer,
)

D, K = 8, 4


def fitted_rvq(dropout: float = 0.0) -> ResidualQuantizer:
    q = ResidualQuantizer.from_factory(
        lambda: EMAVectorQuantizer(D, 16, init=KMeansInit(iters=5)), K, dropout=dropout
    )
    q.train()
    for _ in range(3):
        q(torch.randn(16, 32, D))
    return q.eval()


def test_more_stages_give_lower_error() -> None:
    q = fitted_rvq()
    z = torch.randn(16, 32, D)
    errors = [float((q(z, num_codebooks=k).quantized - z).square().mean()) for k in range(1, K + 1)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.6 * errors[0]


def test_partial_decode_is_the_partial_sum() -> None:
    q = fitted_rvq()
    z = torch.randn(3, 20, D)
    codes = q.encode(z)
    assert codes.shape == (3, 20, K)
    for k in range(1, K + 1):
        assert torch.equal(q.encode(z, num_codebooks=k), codes[..., :k])
        partial = sum(q.stages[i].decode(codes[..., i]) for i in range(k))
        torch.testing.assert_close(q.decode(codes[..., :k]), partial)
        torch.testing.assert_close(q(z, num_codebooks=k).quantized, partial)
        assert q(z, num_codebooks=k).codes.shape == (3, 20, k)


def test_num_codebooks_out_of_range_raises() -> None:
    q = fitted_rvq()
    z = torch.randn(2, 5, D)
    for bad in (0, K + 1):
        with pytest.raises(ValueError):
            q(z, num_codebooks=bad)
        with pytest.raises(ValueError):
            q.encode(z, num_codebooks=bad)


def test_quantizer_dropout_varies_stages_per_sample_in_training_only() -> None:
    q = fitted_rvq(dropout=1.0)
    z = torch.randn(64, 6, D)
    q.train()
    before = copy.deepcopy(q)  # the EMA codebooks move during the training forward
    out = q(z)
    used = (out.codes >= 0).sum(dim=-1)  # (B, T): stages used at each position
    assert torch.all(used == used[:, :1]), "a sample uses the same stages at every position"
    per_sample = used[:, 0]
    assert per_sample.min() >= 1 and per_sample.unique().numel() >= 3
    # stages are used as a prefix: once a stage is skipped, all later ones are
    valid = out.codes >= 0
    assert torch.all(valid[..., 1:] <= valid[..., :-1])
    assert float(out.metrics["num_stages"]) < K
    # each stage only sees (and counts) the samples that use it
    torch.testing.assert_close(out.metrics["counts"].sum(dim=1), valid.sum(dim=(0, 1)).float())
    # each sample's output is the sum of exactly its first n stage outputs
    b = int(per_sample.argmin())
    n = int(per_sample[b])
    expected = sum(before.stages[i].decode(out.codes[b, :, i]) for i in range(n))
    torch.testing.assert_close(out.quantized[b], expected)
    q.eval()
    out = q(z)
    assert torch.all(out.codes >= 0) and float(out.metrics["num_stages"]) == K


def test_no_dropout_uses_all_stages_in_training() -> None:
    q = fitted_rvq(dropout=0.0).train()
    assert torch.all(q(torch.randn(32, 4, D)).codes >= 0)


def test_straight_through_is_applied_once_on_the_sum() -> None:
    # with K stages, summing per-stage straight-through outputs would scale the gradient by K
    q = ResidualQuantizer.from_factory(lambda: VectorQuantizer(D, 16), K).train()
    z = torch.randn(2, 5, D, requires_grad=True)
    q(z).quantized.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))


def test_factorised_stages_get_the_reconstruction_gradient() -> None:
    q = ResidualQuantizer.from_factory(lambda: VectorQuantizer(D, 16, codebook_dim=2), 2).train()
    z = torch.randn(4, 5, D)
    q(z).quantized.square().sum().backward()  # no quantizer loss: reconstruction path only
    for stage in q.stages:
        assert stage.project_out.weight.grad is not None
        assert stage.project_out.weight.grad.abs().sum() > 0


def test_losses_reach_every_stage() -> None:
    q = ResidualQuantizer.from_factory(lambda: VectorQuantizer(D, 16), 3).train()
    z = torch.randn(4, 5, D, requires_grad=True)
    q(z).loss.backward()
    assert all(s.codebook.grad is not None and s.codebook.grad.abs().sum() > 0 for s in q.stages)
    assert z.grad.abs().sum() > 0  # commitment losses reach the encoder


def test_stages_must_agree() -> None:
    with pytest.raises(ValueError):
        ResidualQuantizer([VectorQuantizer(D, 16), VectorQuantizer(D, 32)])
    with pytest.raises(ValueError):
        ResidualQuantizer([VectorQuantizer(D, 16), VectorQuantizer(D + 1, 16)])
    with pytest.raises(ValueError):
        ResidualQuantizer([])
    with pytest.raises(ValueError):
        ResidualQuantizer([FSQ([3, 3])], dropout=1.5)


def test_grouped_residual_codes_are_stage_major() -> None:
    q = GroupedResidualQuantizer(D, 2, lambda d: EMAVectorQuantizer(d, 16), 3).eval()
    assert q.num_codebooks == 6
    z = torch.randn(2, 7, D)
    codes = q.encode(z)
    assert codes.shape == (2, 7, 6)
    # codes[..., s * G + g] is stage s of group g
    for g, group in enumerate(q.groups):
        assert torch.equal(codes[..., g::2], group.encode(z[..., g * 4 : (g + 1) * 4]))
    # the first m = 2 * k codebooks are the first k stages of every group: a lower bitrate
    partial = q.encode(z, num_codebooks=4)
    assert torch.equal(partial, codes[..., :4])
    torch.testing.assert_close(q.decode(codes[..., :4]), q(z, num_codebooks=4).quantized)
    torch.testing.assert_close(q(z).quantized, q.decode(codes))
    for bad in (3, 0, 8):
        with pytest.raises(ValueError):
            q.encode(z, num_codebooks=bad)
    with pytest.raises(ValueError):
        q.decode(codes[..., :5])  # not a multiple of the number of groups


def test_product_codes_and_counts_follow_the_groups() -> None:
    q = ProductQuantizer(D, 4, lambda d: VectorQuantizer(d, 16)).eval()
    z = torch.randn(3, 5, D)
    out = q(z)
    assert out.codes.shape == (3, 5, 4)
    for g, group in enumerate(q.groups):
        assert torch.equal(out.codes[..., g], group.encode(z[..., 2 * g : 2 * g + 2]))
        counts = torch.bincount(out.codes[..., g].reshape(-1), minlength=16).float()
        assert torch.equal(out.metrics["counts"][g], counts)


def test_codebooks_learn_from_their_losses_not_from_the_reconstruction() -> None:
    # VQ-VAE: quantized = z + sg(e - z), so the decoder's gradient never reaches the codebook
    single = VectorQuantizer(D, 16).train()
    z = torch.randn(4, 5, D, requires_grad=True)
    single(z).quantized.square().sum().backward()
    assert single.codebook.grad is None or not single.codebook.grad.any()
    rvq = ResidualQuantizer.from_factory(lambda: VectorQuantizer(D, 16, codebook_dim=2), 2).train()
    rvq(z).quantized.square().sum().backward()
    for stage in rvq.stages:
        assert stage.codebook.grad is None or not stage.codebook.grad.any()
        assert stage.project_out.weight.grad.abs().sum() > 0


def _train_projected_rvq(latent_loss: float, steps: int = 300) -> list[float]:
    """DAC-style stages (projected to 2-d, l2-normalised) trained on their own losses alone;
    returns the residual ratios ``||z - q_k|| / ||z||`` for k = 1..K."""
    torch.manual_seed(0)
    q = ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 32, codebook_dim=2, normalize=True), K, latent_loss=latent_loss
    )
    data = torch.randn(64, 16, D)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    q.train()
    for _ in range(steps):
        opt.zero_grad()
        q(data).loss.backward()
        opt.step()
    q.eval()
    with torch.no_grad():
        codes = q.encode(data)
        return [
            float((data - q.decode(codes[..., :k])).norm() / data.norm()) for k in range(1, K + 1)
        ]


def test_latent_loss_makes_projected_stages_fit_their_residual() -> None:
    # the first v2 default's failure: normalised projected stages only have losses in their
    # 2-d space, so nothing fits their output to the residual and later stages add nothing
    without = _train_projected_rvq(0.0)
    with_fit = _train_projected_rvq(1.0)
    assert min(without) > 1.0, without
    assert all(a > b for a, b in zip(with_fit, with_fit[1:], strict=False)), with_fit
    assert with_fit[-1] < 0.85 * with_fit[0], with_fit


def test_latent_loss_is_a_training_loss_only() -> None:
    q = ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 16, codebook_dim=2, normalize=True), K, latent_loss=1.0
    )
    plain = copy.deepcopy(q)
    plain.latent_loss = 0.0
    z = torch.randn(4, 8, D)
    q.train(), plain.train()
    assert float(q(z).loss.detach()) > float(plain(z).loss.detach())
    q.eval()
    assert float(q(z).loss) == 0.0
    assert torch.equal(q(z).quantized, plain.eval()(z).quantized)
    with pytest.raises(ValueError, match="latent_loss"):
        ResidualQuantizer([VectorQuantizer(D, 4)], latent_loss=-1.0)


def test_lookup_normalisation_searches_by_cosine_and_outputs_raw_codes() -> None:
    # DAC's variant: the code is the cosine-nearest one, the output its raw vector (which
    # keeps a magnitude), and decode(encode(z)) equals the eval forward
    torch.manual_seed(0)
    q = VectorQuantizer(D, 16, codebook_dim=3, normalize="lookup")
    with torch.no_grad():
        q.codebook.mul_(torch.rand(16, 1) * 10 + 0.1)  # codes of very different norms
    z = torch.randn(4, 8, D)
    q.eval()
    out = q(z)
    latent = q.project_in(z)
    cos = (
        torch.nn.functional.normalize(latent, dim=-1)
        @ torch.nn.functional.normalize(q.codebook, dim=-1).T
    )
    assert torch.equal(out.codes, cos.argmax(-1))
    assert torch.allclose(out.quantized, q.project_out(q.codebook[out.codes]), atol=1e-6)
    assert torch.allclose(q.decode(q.encode(z)), out.quantized, atol=1e-6)
    q.train()
    loss = q(z).loss
    raw = torch.nn.functional.mse_loss(q.codebook[out.codes], latent.detach())
    assert float(loss.detach()) == pytest.approx(float(raw.detach()) * (1 + q.beta), rel=1e-5)
    with pytest.raises(ValueError, match="normalize"):
        VectorQuantizer(D, 4, normalize="cosine")


def test_per_stage_gradient_is_the_chain_of_the_stages_straight_throughs() -> None:
    # DAC's path: q_i = W_out_i (W_in_i r_i + b) in gradient, r_{i+1} = r_i - q_i, so
    # d(q_1 + q_2)/dz = A_1 + A_2 (I - A_1) with A_i = W_out_i W_in_i
    torch.manual_seed(0)
    q = ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 16, codebook_dim=3, normalize="lookup"), 2, gradient="stages"
    )
    plain = copy.deepcopy(q)
    plain.gradient = "sum"
    q.train(), plain.train()
    z = torch.randn(5, D, requires_grad=True)
    out = q(z)
    g = torch.randn(5, D)
    (grad,) = torch.autograd.grad((out.quantized * g).sum(), z)
    a1, a2 = (s.project_out.weight @ s.project_in.weight for s in q.stages)
    jac = a1 + a2 @ (torch.eye(D) - a1)
    assert torch.allclose(grad, g @ jac, atol=1e-5)
    # the same values, codes and losses as the default path; only the gradient differs
    ref = plain(z)
    assert torch.allclose(out.quantized, ref.quantized) and torch.equal(out.codes, ref.codes)
    assert torch.allclose(out.loss, ref.loss)
    (identity,) = torch.autograd.grad((ref.quantized * g).sum(), z)
    assert torch.allclose(identity, g)
    q.eval()
    assert torch.allclose(q.decode(q.encode(z)), q(z).quantized, atol=1e-6)
    with pytest.raises(ValueError, match="gradient"):
        ResidualQuantizer([VectorQuantizer(D, 4)], gradient="chain")


def test_per_stage_gradient_with_dropout_reaches_only_the_stages_a_sample_used() -> None:
    torch.manual_seed(0)
    q = ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 16, codebook_dim=3, normalize="lookup"),
        K,
        gradient="stages",
        dropout=1.0,
    ).train()
    z = torch.randn(6, D, requires_grad=True)
    n_used = torch.tensor([1, 2, 3, 4, 1, 4])
    out = q._forward(z, n_used=n_used)
    out.quantized.sum().backward()
    assert torch.isfinite(z.grad).all()
    a1 = q.stages[0].project_out.weight @ q.stages[0].project_in.weight
    # samples 0 and 4 used stage 1 only: their gradient is that stage's alone
    assert torch.allclose(z.grad[[0, 4]], torch.ones(2, D) @ a1, atol=1e-5)
    for i, s in enumerate(q.stages):
        # a stage's output weights get gradient only if some sample used it
        assert (s.project_out.weight.grad is not None) == bool((n_used > i).any())


def test_latent_fit_pulls_per_stage_outputs_onto_their_residuals() -> None:
    # under the per-stage straight-through the fit term acts on the stage's own output:
    # with "both" the quantizer's loss reaches every stage's output projection; with
    # "commit" (the commitment alone) a stage's output is only constrained through the
    # next stage's residual, so the last stage's is not constrained at all
    torch.manual_seed(0)
    both = ResidualQuantizer.from_factory(
        lambda: VectorQuantizer(D, 16, codebook_dim=3, normalize="lookup"),
        2,
        gradient="stages",
        latent_loss=1.0,
    )
    commit = copy.deepcopy(both)
    commit.latent_fit = "commit"
    z = torch.randn(6, 8, D)
    both.train(), commit.train()
    both(z).loss.backward()
    commit(z).loss.backward()
    for a in both.stages:
        assert a.project_out.weight.grad.abs().sum() > 0
    last = commit.stages[-1].project_out.weight.grad
    assert last is None or not last.any()
    with torch.no_grad():  # the difference is exactly the fit of each stage's output
        extra = float(both(z).loss - commit(z).loss)
    assert extra > 0
    with pytest.raises(ValueError, match="latent_fit"):
        ResidualQuantizer([VectorQuantizer(D, 4)], latent_fit="output")
