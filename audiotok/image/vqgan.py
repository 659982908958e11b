"""The VQGAN training objective in one module (Esser et al., arXiv:2012.09841).

:class:`VQGANLoss` is what a trainer's image task calls twice per step, like taming's
``VQLPIPSWithDiscriminator``: :meth:`VQGANLoss.generator_loss` (reconstruction terms, the
quantizer's loss and, once warmed up, the adaptively weighted hinge GAN loss and feature
matching) for the codec's optimiser, and :meth:`VQGANLoss.discriminator_loss` for the
discriminator's optimiser (``loss.discriminator.parameters()``). With ``gan_weight = 0`` it is
the plain VQ-VAE objective and holds no discriminator.

Reconstruction terms, all optional by weight: L1, MSE, ``1 - SSIM`` or ``1 - MS-SSIM``, focal
frequency (arXiv:2012.12821) and LPIPS (only with an :class:`~audiotok.image.lpips.LPIPS`
loaded by the user from a checked weight file).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.image.base import ImageCodecOutput
from audiotok.image.config import ImageConfig, check_int
from audiotok.image.discriminator import PatchGAN
from audiotok.image.losses import (
    GANWarmup,
    adaptive_generator_weight,
    feature_matching_loss,
    focal_frequency_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from audiotok.image.lpips import LPIPS
from audiotok.image.ssim import ssim_loss

__all__ = ["VQGANLossConfig", "VQGANLoss"]


@dataclass(frozen=True)
class VQGANLossConfig(ImageConfig):
    """Weights and schedule of :class:`VQGANLoss`.

    Attributes:
        l1_weight, mse_weight, ssim_weight, focal_frequency_weight, lpips_weight: weights
            of the reconstruction terms (0 turns a term off).
        multiscale_ssim: the SSIM term uses MS-SSIM.
        codebook_weight: weight of the quantizer's loss (``output.loss``).
        gan_weight: weight of the generator's hinge loss (0: no discriminator at all).
        feature_matching_weight: weight of discriminator feature matching.
        adaptive_weight: scale the GAN loss by taming's gradient-norm ratio at the decoder's
            last layer (clamped to ``max_adaptive_weight``).
        max_adaptive_weight: the clamp.
        disc_start, generator_delay, generator_ramp: the :class:`GANWarmup` schedule.
        disc_hidden, disc_layers, disc_spectral_norm: the :class:`PatchGAN`.
    """

    l1_weight: float = 1.0
    mse_weight: float = 0.0
    ssim_weight: float = 0.0
    multiscale_ssim: bool = False
    focal_frequency_weight: float = 0.0
    lpips_weight: float = 0.0
    codebook_weight: float = 1.0
    gan_weight: float = 0.0
    feature_matching_weight: float = 0.0
    adaptive_weight: bool = True
    max_adaptive_weight: float = 1e4
    disc_start: int = 0
    generator_delay: int = 0
    generator_ramp: int = 0
    disc_hidden: int = 64
    disc_layers: int = 3
    disc_spectral_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        weights = (
            "l1_weight", "mse_weight", "ssim_weight", "focal_frequency_weight", "lpips_weight",
            "codebook_weight", "gan_weight", "feature_matching_weight", "max_adaptive_weight",
        )  # fmt: skip
        for name in weights:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        for name in ("disc_start", "generator_delay", "generator_ramp"):
            check_int(name, getattr(self, name), minimum=0)
        check_int("disc_hidden", self.disc_hidden)
        check_int("disc_layers", self.disc_layers)
        for name in ("multiscale_ssim", "adaptive_weight", "disc_spectral_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def warmup(self) -> GANWarmup:
        """The GAN schedule."""
        return GANWarmup(self.disc_start, self.generator_delay, self.generator_ramp)


class VQGANLoss(nn.Module):
    """Generator and discriminator objectives of VQGAN training.

    Args:
        config: a :class:`VQGANLossConfig`.
        channels: image channels C (for the discriminator).
        lpips: a loaded :class:`LPIPS`, required when ``lpips_weight > 0``.

    Raises:
        ValueError: ``lpips_weight > 0`` without an LPIPS module.
    """

    def __init__(
        self,
        config: VQGANLossConfig | None = None,
        *,
        channels: int = 3,
        lpips: LPIPS | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config or VQGANLossConfig()
        if config.lpips_weight > 0 and lpips is None:
            raise ValueError("lpips_weight > 0 needs an LPIPS module (LPIPS.from_file)")
        self.lpips = lpips
        self.discriminator = (
            PatchGAN(
                channels,
                hidden=config.disc_hidden,
                num_layers=config.disc_layers,
                spectral_norm=config.disc_spectral_norm,
            )
            if config.gan_weight > 0
            else None
        )

    def reconstruction_loss(self, image: Tensor, recon: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted sum of the reconstruction terms, and each term (detached) for logging."""
        c = self.config
        terms: dict[str, tuple[float, Tensor]] = {}
        if c.l1_weight:
            terms["l1"] = (c.l1_weight, F.l1_loss(recon, image))
        if c.mse_weight:
            terms["mse"] = (c.mse_weight, F.mse_loss(recon, image))
        if c.ssim_weight:
            ssim_term = ssim_loss(recon, image, multiscale=c.multiscale_ssim)
            terms["ms_ssim_loss" if c.multiscale_ssim else "ssim_loss"] = (c.ssim_weight, ssim_term)
        if c.focal_frequency_weight:
            terms["focal_frequency"] = (
                c.focal_frequency_weight,
                focal_frequency_loss(recon, image),
            )
        if c.lpips_weight and self.lpips is not None:
            terms["lpips"] = (c.lpips_weight, self.lpips(recon, image).mean())
        total = sum((w * t for w, t in terms.values()), image.new_zeros(()))
        return total, {name: t.detach() for name, (_, t) in terms.items()}

    def generator_loss(
        self, image: Tensor, output: ImageCodecOutput, step: int, last_layer: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The codec's objective at ``step``.

        Args:
            image: ``(B, C, H, W)`` the input.
            output: the codec's ``forward(image)``.
            step: the global training step (drives the warm-up).
            last_layer: ``codec.last_layer``; needed for the adaptive weight.

        Returns:
            ``(loss, logs)``: a scalar with a graph, and detached scalars (``rec``,
            ``codebook``, each reconstruction term, and once the GAN is on ``gan``,
            ``gan_factor``, ``adaptive_weight``, ``feature_matching``).
        """
        c = self.config
        rec, logs = self.reconstruction_loss(image, output.image)
        loss = rec + c.codebook_weight * output.loss
        logs.update(rec=rec.detach(), codebook=output.loss.detach())
        factor = c.warmup.generator_factor(step)
        if self.discriminator is None or factor == 0.0:
            return loss, logs
        logits, fake_features = self.discriminator.forward_features(output.image)
        gan = hinge_generator_loss(logits)
        weight = torch.ones((), device=image.device)
        if c.adaptive_weight and torch.is_grad_enabled() and rec.requires_grad:
            if last_layer is None:
                raise ValueError("the adaptive GAN weight needs last_layer=codec.last_layer")
            weight = adaptive_generator_weight(
                rec, gan, last_layer, max_weight=c.max_adaptive_weight
            )
        loss = loss + factor * c.gan_weight * weight * gan
        logs.update(gan=gan.detach(), gan_factor=image.new_tensor(factor), adaptive_weight=weight)
        if c.feature_matching_weight:
            with torch.no_grad():
                real_features = self.discriminator.forward_features(image)[1]
            fm = feature_matching_loss(real_features, fake_features)
            loss = loss + factor * c.feature_matching_weight * fm
            logs["feature_matching"] = fm.detach()
        return loss, logs

    def discriminator_loss(
        self, image: Tensor, recon: Tensor, step: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's hinge loss at ``step`` (``recon`` is detached here).

        Returns:
            ``(loss, logs)``; before ``disc_start`` (or without a discriminator) the loss is
            a constant 0 with no graph, so a trainer may skip its optimiser step.
        """
        if self.discriminator is None or not self.config.warmup.discriminator_active(step):
            return image.new_zeros(()), {}
        real = self.discriminator(image)
        fake = self.discriminator(recon.detach())
        loss = hinge_discriminator_loss(real, fake)
        logs = {
            "disc_loss": loss.detach(),
            "logits_real": real.detach().mean(),
            "logits_fake": fake.detach().mean(),
        }
        return loss, logs
