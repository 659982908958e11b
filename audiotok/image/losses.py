"""VQGAN training losses (Esser et al., arXiv:2012.09841) and offline perceptual terms.

- :func:`hinge_discriminator_loss` / :func:`hinge_generator_loss`: taming's hinge GAN
  objective, for one discriminator's logits.
- :func:`adaptive_generator_weight`: taming's ``lambda = ||grad_L(rec)|| / (||grad_L(gan)||
  + eps)`` at the decoder's last layer L, clamped to ``[0, max_weight]`` and detached, so the
  GAN gradient at the output matches the reconstruction gradient's size.
- :class:`GANWarmup`: the discriminator trains from ``disc_start``; its loss reaches the
  generator only after ``generator_delay`` further steps, ramped linearly over
  ``generator_ramp`` steps (an abrupt GAN onset wrecks reconstructions: taming#44).
- :func:`focal_frequency_loss` (Jiang et al., arXiv:2012.12821): a spectrum distance that
  weights each frequency by its current error, so hard frequencies get the attention.
- :func:`feature_matching_loss`: L1 between discriminator activations on real and fake images
  (pix2pixHD, arXiv:1711.11585).
- L1 is ``torch.nn.functional.l1_loss``; SSIM / MS-SSIM are in :mod:`audiotok.image.ssim`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "adaptive_generator_weight",
    "GANWarmup",
    "focal_frequency_loss",
    "feature_matching_loss",
]


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``0.5 (mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))))``, a scalar (taming's scale)."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """``-mean(D(G(z)))``, the generator's hinge loss, a scalar."""
    return -fake_logits.mean()


def adaptive_generator_weight(
    rec_loss: Tensor,
    gan_loss: Tensor,
    last_layer: Tensor,
    *,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> Tensor:
    """Taming's adaptive weight of the generator's GAN loss.

    Args:
        rec_loss: scalar reconstruction (+ perceptual) loss, with a graph to ``last_layer``.
        gan_loss: scalar generator GAN loss, with a graph to ``last_layer``.
        last_layer: the decoder's last weight (``ImageCodec.last_layer``).
        max_weight: upper clamp (taming: 1e4).
        eps: added to the GAN gradient norm.

    Returns:
        Detached scalar ``clamp(||d rec / d L|| / (||d gan / d L|| + eps), 0, max_weight)``;
        log it. The graphs are kept (``retain_graph``) for the backward pass that follows.
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (gan_grad.norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


@dataclass(frozen=True)
class GANWarmup:
    """When the discriminator trains and how much its loss reaches the generator.

    Attributes:
        disc_start: first step at which the discriminator is trained.
        generator_delay: steps after ``disc_start`` before the GAN loss reaches the
            generator (the discriminator gets a head start on the frozen reconstructions).
        generator_ramp: steps over which the generator's GAN factor rises linearly from 0
            to 1 (0: a step).
    """

    disc_start: int = 0
    generator_delay: int = 0
    generator_ramp: int = 0

    def __post_init__(self) -> None:
        for name in ("disc_start", "generator_delay", "generator_ramp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")

    def discriminator_active(self, step: int) -> bool:
        """True once the discriminator trains (``step >= disc_start``)."""
        return step >= self.disc_start

    def generator_factor(self, step: int) -> float:
        """Multiplier of the generator's GAN loss at ``step``, in ``[0, 1]``.

        0 before ``disc_start + generator_delay``; then ``(step - start + 1) / (ramp + 1)``
        up to 1, so the first active step has a small, non-zero factor.
        """
        start = self.disc_start + self.generator_delay
        if step < start:
            return 0.0
        return min(1.0, (step - start + 1) / (self.generator_ramp + 1))


def focal_frequency_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    log_weight: bool = False,
    batch_weight: bool = False,
) -> Tensor:
    """Focal frequency loss (arXiv:2012.12821, eq. 2-5) on whole images.

    The weight of frequency (u, v) is ``|F_pred - F_target| ** alpha`` (optionally
    ``log(1 + .)``), normalised to ``[0, 1]`` by its maximum per image and channel (or over
    the batch) and detached; the loss is the mean of weight times the squared spectrum
    distance. The 2-D FFT is orthonormal, so the scale does not depend on the image size.

    Args:
        pred, target: ``(B, C, H, W)`` float images.
        alpha: the focusing exponent.
        log_weight: use ``log(1 + w)`` for the weights.
        batch_weight: normalise by the maximum over the whole batch.

    Returns:
        A scalar; 0 for identical images.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"expected (B, C, H, W) pairs of one shape, got {tuple(pred.shape)}, "
            f"{tuple(target.shape)}"
        )
    diff = torch.fft.fft2(pred.float(), norm="ortho") - torch.fft.fft2(target.float(), norm="ortho")
    distance = diff.real**2 + diff.imag**2  # (B, C, H, W)
    with torch.no_grad():
        weight = distance.sqrt() ** alpha
        if log_weight:
            weight = torch.log1p(weight)
        peak = weight.amax() if batch_weight else weight.amax(dim=(-2, -1), keepdim=True)
        weight = (weight / peak.clamp_min(torch.finfo(weight.dtype).tiny)).clamp(0.0, 1.0)
    return (weight * distance).mean()


def feature_matching_loss(
    real_features: Sequence[Tensor], fake_features: Sequence[Tensor]
) -> Tensor:
    """Mean over layers of ``L1(fake, real)`` with the real activations detached.

    Args:
        real_features, fake_features: per-layer activations from
            :meth:`~audiotok.image.discriminator.PatchGAN.forward_features`.

    Returns:
        A scalar.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError(
            f"expected two equal, non-empty lists of features, got {len(real_features)} and "
            f"{len(fake_features)}"
        )
    losses = [F.l1_loss(f, r.detach()) for r, f in zip(real_features, fake_features, strict=True)]
    return torch.stack(losses).mean()
