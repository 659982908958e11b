"""SSIM and MS-SSIM: identities, monotonicity, scikit-image's numbers, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiotok.image import ms_ssim, ssim, ssim_loss
from audiotok.image.ssim import gaussian_window


def _pair_rgb() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 40, 37))
    b = np.clip(a + 0.3 * rng.normal(size=a.shape), -1, 1)
    return torch.tensor(a)[None], torch.tensor(b)[None]


def _pair_grey() -> tuple[torch.Tensor, torch.Tensor]:
    a = np.random.default_rng(0).uniform(0, 1, (64, 64))
    return torch.tensor(a)[None, None], torch.tensor(a * 0.5 + 0.2)[None, None]


@pytest.mark.parametrize("size", [(8, 8), (28, 28), (64, 48), (200, 180)])
def test_identical_images_score_one(size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size) * 2 - 1
    torch.testing.assert_close(ssim(x, x), torch.tensor(1.0))
    torch.testing.assert_close(ms_ssim(x, x), torch.tensor(1.0))
    torch.testing.assert_close(ssim_loss(x, x), torch.tensor(0.0))


@pytest.mark.parametrize("fn", [ssim, ms_ssim])
def test_score_decreases_with_noise(fn) -> None:  # noqa: ANN001
    x = torch.rand(2, 1, 180, 180) * 2 - 1
    scores = [fn(x, (x + s * torch.randn_like(x)).clamp(-1, 1)).item() for s in (0.05, 0.2, 0.6)]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    per_image = fn(x, x + 0.1 * torch.randn_like(x), reduction="none")
    assert per_image.shape == (2,)


def test_matches_scikit_image_golden_values() -> None:
    # values from skimage 0.26 structural_similarity(gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, channel_axis=0, data_range=...) on the same arrays
    a, b = _pair_rgb()
    assert ssim(a, b, data_range=2.0).item() == pytest.approx(0.5799643718088571, abs=1e-9)
    a, b = _pair_grey()
    assert ssim(a, b, data_range=1.0).item() == pytest.approx(0.7974207319509444, abs=1e-9)


def test_matches_scikit_image_when_installed() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 255, (3, 33, 50))
    b = np.clip(a + rng.normal(0, 40, a.shape), 0, 255)
    ref = metrics.structural_similarity(
        a,
        b,
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255.0,
    )
    got = ssim(torch.tensor(a)[None], torch.tensor(b)[None], data_range=255.0).item()
    assert got == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("multiscale", [False, True])
def test_differentiable_with_finite_gradients(multiscale: bool) -> None:
    target = torch.rand(2, 3, 176, 176) * 2 - 1
    pred = (target + 0.2 * torch.randn_like(target)).requires_grad_()
    loss = ssim_loss(pred, target, multiscale=multiscale)
    loss.backward()
    assert 0 < loss.item() < 1 and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_window_and_errors() -> None:
    g = gaussian_window(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0) and g.argmax() == 5
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(4, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
