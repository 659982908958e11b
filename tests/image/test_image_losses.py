"""PatchGAN, the GAN losses, the adaptive weight, the warm-up and focal frequency."""

from __future__ import annotations

import pytest
import torch
from tiny_image_models import tiny_vqvae

from audiotok.image import (
    GANWarmup,
    PatchGAN,
    adaptive_generator_weight,
    feature_matching_loss,
    focal_frequency_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)


@pytest.mark.parametrize("spectral", [False, True])
def test_patchgan_works_with_batch_one(spectral: bool) -> None:
    disc = PatchGAN(3, hidden=8, num_layers=2, spectral_norm=spectral).train()
    x = torch.randn(1, 3, 24, 24, requires_grad=True)
    logits, features = disc.forward_features(x)
    assert logits.shape == (1, 1, 4, 4) and len(features) == 3
    hinge_discriminator_loss(logits, -logits).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_patchgan_judges_each_image_alone() -> None:
    # GroupNorm, not BatchNorm: a sample's logits do not depend on its batch mates
    disc = PatchGAN(1, hidden=8, num_layers=2).train()
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(disc(x)[1:2], disc(x[1:2]))
    with pytest.raises(ValueError, match=">= 12"):
        disc(torch.randn(1, 1, 11, 16))


def test_hinge_losses() -> None:
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0)
    assert hinge_discriminator_loss(real, fake) == 0
    assert hinge_discriminator_loss(fake, real) == pytest.approx(0.5 * (3 + 3))
    assert hinge_generator_loss(fake) == pytest.approx(2.0)


def _toy_losses(scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(3, 4, generator=gen))
    out = torch.randn(5, 4, generator=gen) @ weight.T
    rec = (out - torch.randn(5, 3, generator=gen)).abs().mean()
    gan = -scale * out.pow(2).mean()
    return rec, gan, weight


def test_adaptive_weight_is_the_ratio_of_gradient_norms() -> None:
    rec, gan, weight = _toy_losses(0.3)
    got = adaptive_generator_weight(rec, gan, weight, eps=1e-4)
    rec.backward(retain_graph=True)
    g_rec = weight.grad.norm()
    weight.grad = None
    gan.backward()
    g_gan = weight.grad.norm()
    assert not got.requires_grad
    torch.testing.assert_close(got, g_rec / (g_gan + 1e-4))


def test_adaptive_weight_is_clamped() -> None:
    rec, gan, weight = _toy_losses(1e-9)
    assert adaptive_generator_weight(rec, gan, weight, max_weight=7.0) == 7.0


def test_adaptive_weight_at_the_decoders_last_layer() -> None:
    model, disc = tiny_vqvae("fsq").train(), PatchGAN(3, hidden=8, num_layers=1)
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    recon = model(x).image
    w = adaptive_generator_weight(
        (recon - x).abs().mean(), hinge_generator_loss(disc(recon)), model.last_layer
    )
    assert torch.isfinite(w) and w > 0


def test_warmup_ramps_from_zero_after_disc_start_and_delay() -> None:
    warm = GANWarmup(disc_start=10, generator_delay=5, generator_ramp=4)
    assert not warm.discriminator_active(9) and warm.discriminator_active(10)
    factors = [warm.generator_factor(s) for s in range(30)]
    assert factors[:15] == [0.0] * 15
    assert factors[15:20] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[20:] == [1.0] * 10
    assert GANWarmup().generator_factor(0) == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        GANWarmup(disc_start=-1)


def test_focal_frequency_loss_known_value() -> None:
    # a constant offset c only moves the DC bin: |F| = 4c on 16 pixels (ortho FFT), weight 1
    target = torch.randn(2, 3, 4, 4)
    assert focal_frequency_loss(target, target) == 0
    torch.testing.assert_close(focal_frequency_loss(target + 0.5, target), torch.tensor(0.25))
    pred = (target + 0.3 * torch.randn_like(target)).requires_grad_()
    loss = focal_frequency_loss(pred, target, log_weight=True)
    loss.backward()
    assert loss > 0 and torch.isfinite(pred.grad).all()
    far = focal_frequency_loss(target + torch.randn_like(target), target)
    assert far > focal_frequency_loss(target + 0.1 * torch.randn_like(target), target)


def test_feature_matching_detaches_the_real_side() -> None:
    real = [torch.randn(2, 4, requires_grad=True), torch.randn(2, 3, 2, requires_grad=True)]
    fake = [torch.randn(2, 4, requires_grad=True), torch.randn(2, 3, 2, requires_grad=True)]
    loss = feature_matching_loss(real, fake)
    expected = ((real[0] - fake[0]).abs().mean() + (real[1] - fake[1]).abs().mean()) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None
