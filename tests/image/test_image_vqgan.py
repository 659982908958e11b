"""VQGANLoss: the warm-up gates the GAN, the adaptive weight is logged, gradients go where due."""

from __future__ import annotations

import pytest
import torch
from tiny_image_models import tiny_vqvae

from audiotok.image.lpips import LPIPS
from audiotok.image.vqgan import VQGANLoss, VQGANLossConfig


def _setup(**kw: object) -> tuple:
    cfg = {
        "ssim_weight": 0.5,
        "focal_frequency_weight": 1.0,
        "gan_weight": 0.8,
        "feature_matching_weight": 1.0,
        "disc_start": 3,
        "generator_delay": 2,
        "generator_ramp": 1,
        "disc_hidden": 8,
        "disc_layers": 2,
    }
    cfg.update(kw)
    model = tiny_vqvae("fsq").train()
    return model, VQGANLoss(VQGANLossConfig(**cfg), channels=3), torch.rand(1, 3, 16, 16) * 2 - 1


def test_no_gan_before_the_warmup_and_a_logged_weight_after() -> None:
    model, crit, x = _setup()
    out = model(x)
    loss, logs = crit.generator_loss(x, out, step=4, last_layer=model.last_layer)
    assert {"l1", "ssim_loss", "focal_frequency", "rec", "codebook"} <= set(logs)
    assert "gan" not in logs
    torch.testing.assert_close(loss, logs["rec"] + logs["codebook"])
    assert crit.discriminator_loss(x, out.image, step=2)[1] == {}
    assert crit.discriminator_loss(x, out.image, step=3)[0].requires_grad

    loss, logs = crit.generator_loss(x, out, step=5, last_layer=model.last_layer)
    assert logs["gan_factor"] == 0.5 and logs["adaptive_weight"] > 0
    assert {"gan", "feature_matching"} <= set(logs)
    loss.backward()
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0


def test_discriminator_loss_trains_only_the_discriminator() -> None:
    model, crit, x = _setup()
    out = model(x)
    loss, logs = crit.discriminator_loss(x, out.image, step=10)
    loss.backward()
    assert {"disc_loss", "logits_real", "logits_fake"} == set(logs)
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in crit.discriminator.parameters())


def test_adaptive_weight_needs_the_last_layer_and_clamps() -> None:
    model, crit, x = _setup(max_adaptive_weight=1e-3)
    out = model(x)
    with pytest.raises(ValueError, match="last_layer"):
        crit.generator_loss(x, out, step=100)
    _, logs = crit.generator_loss(x, out, step=100, last_layer=model.last_layer)
    assert logs["adaptive_weight"] <= 1e-3 and logs["gan_factor"] == 1.0


def test_plain_vqvae_objective_and_lpips(tmp_path) -> None:  # noqa: ANN001
    model, _, x = _setup()
    plain = VQGANLoss(VQGANLossConfig(mse_weight=1.0, l1_weight=0.0))
    assert plain.discriminator is None
    out = model(x)
    loss, logs = plain.generator_loss(x, out, step=10**6)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(out.image, x) + out.loss)
    with pytest.raises(ValueError, match="LPIPS"):
        VQGANLoss(VQGANLossConfig(lpips_weight=1.0))
    lpips = LPIPS((4,), (1,))
    with_lpips = VQGANLoss(VQGANLossConfig(lpips_weight=1.0), lpips=lpips)
    assert with_lpips.generator_loss(x, out, step=0)[1]["lpips"] >= 0


def test_config_is_strict() -> None:
    cfg = VQGANLossConfig(gan_weight=0.1, disc_start=100)
    assert VQGANLossConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.warmup.discriminator_active(100) and not cfg.warmup.discriminator_active(99)
    with pytest.raises(ValueError, match="gan_weight"):
        VQGANLossConfig(gan_weight=-1.0)
    with pytest.raises(ValueError, match="unknown"):
        VQGANLossConfig.from_dict({"disc_weight": 1.0})
