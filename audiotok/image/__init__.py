"""Image VQ-VAEs on the shared quantizer core: models, discriminator and losses.

Families (each a frozen config + an :class:`ImageCodec` with ``family`` / ``config_class``):
:class:`ImageVQVAE` (``"image_vqvae"``; VQ-VAE arXiv:1711.00937, RQ-VAE, FSQ, ViT-VQGAN codes
through the quantizer spec) and :class:`ImageVQVAE2` (``"image_vqvae2"``; arXiv:1906.00446).
Codes are always ``(B, K, H', W')``; images are float, by convention in ``[-1, 1]``. VQGAN
training pieces (arXiv:2012.09841): :class:`PatchGAN`, :mod:`audiotok.image.losses`, SSIM and
:class:`LPIPS` from a user-supplied, hash-checked weight file (nothing is downloaded), all
combined by :class:`VQGANLoss`.
This package never imports :mod:`audiotok.audio`.
"""

from audiotok.image.base import ImageCodec, ImageCodecOutput
from audiotok.image.config import ImageConfig
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
from audiotok.image.ssim import ms_ssim, ssim, ssim_loss
from audiotok.image.vqgan import VQGANLoss, VQGANLossConfig
from audiotok.image.vqvae import (
    QUANTIZER_PRESETS,
    ImageVQVAE,
    ImageVQVAEConfig,
    quantizer_preset,
)
from audiotok.image.vqvae2 import ImageVQVAE2, ImageVQVAE2Config, VQVAE2Codes

#: The image model families by name, for the hub/trainer registry.
__all__ = [
    "QUANTIZER_PRESETS",
    "GANWarmup",
    "ImageCodec",
    "ImageCodecOutput",
    "ImageConfig",
    "ImageVQVAE",
    "ImageVQVAE2",
    "ImageVQVAE2Config",
    "ImageVQVAEConfig",
    "LPIPS",
    "PatchGAN",
    "VQGANLoss",
    "VQGANLossConfig",
    "VQVAE2Codes",
    "adaptive_generator_weight",
    "feature_matching_loss",
    "focal_frequency_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "ms_ssim",
    "quantizer_preset",
    "ssim",
    "ssim_loss",
]
