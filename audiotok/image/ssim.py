"""SSIM and MS-SSIM, differentiable, with a gaussian window.

SSIM (Wang et al. 2004, "Image quality assessment: from error visibility to structural
similarity") compares local means, variances and covariance under an 11x11 gaussian window
(sigma 1.5) with ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` for the data range ``L``, and
averages the map over the *valid* positions (no padding): the same numbers as scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=L)``. MS-SSIM (Wang et al. 2003) multiplies the contrast-structure terms of
successively 2x average-pooled images with the luminance-contrast-structure term of the
coarsest one, with the published weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); as in
pytorch-msssim, negative terms are clipped to 0 so that fractional powers stay real.

Small images: when a side is shorter than the window, the window shrinks to the largest odd
size that fits (same sigma, renormalised); MS-SSIM uses as many scales as keep every side at
least the window size, and renormalises the weights of the scales it keeps. Both are
documented departures that keep 8x8 digits and 28x28 Fashion-MNIST usable.

The default data range is 2, for images in ``[-1, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ssim", "ms_ssim", "ssim_loss", "gaussian_window", "MS_SSIM_WEIGHTS"]

#: Per-scale exponents of MS-SSIM, finest scale first (Wang et al. 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int, sigma: float, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """A normalised 1-D gaussian ``(size,)`` centred on the middle tap (``size`` odd)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be odd and positive, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"expected two images of the same shape (B, C, H, W), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if not (x.is_floating_point() and y.is_floating_point()):
        raise ValueError(f"expected float images, got {x.dtype} and {y.dtype}")


def _fit_window(size: int, height: int, width: int) -> int:
    size = min(size, height, width)
    return size if size % 2 else size - 1


def _blur(x: Tensor, window: Tensor) -> Tensor:
    # separable valid filtering, one group per channel: (B, C, H, W) -> (B, C, H-s+1, W-s+1)
    c = x.shape[1]
    s = window.numel()
    x = F.conv2d(x, window.view(1, 1, s, 1).expand(c, 1, s, 1), groups=c)
    return F.conv2d(x, window.view(1, 1, 1, s).expand(c, 1, 1, s), groups=c)


def _ssim_terms(
    x: Tensor, y: Tensor, window: Tensor, data_range: float, k1: float, k2: float
) -> tuple[Tensor, Tensor]:
    """Per-image-and-channel means of the SSIM map and of the contrast-structure map, ``(B, C)``."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (lum * cs).mean(dim=(-2, -1)), cs.mean(dim=(-2, -1))


def ssim(
    x: Tensor,
    y: Tensor,
    *,
    data_range: float = 2.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> Tensor:
    """Structural similarity of two image batches (1 for identical images).

    Args:
        x, y: ``(B, C, H, W)`` float images with values spanning ``data_range``.
        data_range: L, the value range (2 for ``[-1, 1]``, 1 for ``[0, 1]``, 255 for bytes).
        window_size: odd gaussian window side (shrunk for small images, see the module doc).
        sigma: gaussian standard deviation in pixels.
        k1, k2: the stabilising constants' factors.
        reduction: ``"mean"`` (a scalar) or ``"none"`` (``(B,)``, one value per image).

    Returns:
        Scalar or ``(B,)`` SSIM, computed in float32 at least.
    """
    _check_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    size = _fit_window(window_size, *x.shape[-2:])
    window = gaussian_window(size, sigma, dtype=dtype).to(x.device)
    value = _ssim_terms(x, y, window, data_range, k1, k2)[0].mean(dim=1)
    return _reduce(value, reduction)


def ms_ssim(
    x: Tensor,
    y: Tensor,
    *,
    data_range: float = 2.0,
    window_size: int = 11,
    sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> Tensor:
    """Multi-scale SSIM (1 for identical images).

    Args:
        x, y: ``(B, C, H, W)`` float images.
        data_range, window_size, sigma, k1, k2, reduction: as in :func:`ssim`.
        weights: exponents per scale, finest first; only the scales that fit are used (at
            least one), their weights renormalised to the sum of the given ones.

    Returns:
        Scalar or ``(B,)`` MS-SSIM.
    """
    _check_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    size = _fit_window(window_size, *x.shape[-2:])
    window = gaussian_window(size, sigma, dtype=dtype).to(x.device)
    scales = 1
    while scales < len(weights) and min(x.shape[-2:]) // 2**scales >= size:
        scales += 1
    w = torch.tensor(weights[:scales], dtype=dtype, device=x.device)
    w = w * (sum(weights) / w.sum())
    terms = []
    for i in range(scales):
        full, cs = _ssim_terms(x, y, window, data_range, k1, k2)
        terms.append(torch.relu(full if i == scales - 1 else cs))
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(terms, dim=0)  # (S, B, C)
    value = torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean(dim=1)
    return _reduce(value, reduction)


def ssim_loss(x: Tensor, y: Tensor, *, multiscale: bool = False, data_range: float = 2.0) -> Tensor:
    """``1 - SSIM`` (or ``1 - MS-SSIM``), a scalar to minimise."""
    fn = ms_ssim if multiscale else ssim
    return 1.0 - fn(x, y, data_range=data_range)


def _reduce(value: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return value.mean()
    if reduction == "none":
        return value
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
