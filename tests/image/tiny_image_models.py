"""Tiny image models shared by the image tests (factor 4, a few channels, 16-entry codebooks)."""

from __future__ import annotations

from typing import Any

from audiotok.image import ImageVQVAE, ImageVQVAE2, ImageVQVAE2Config, ImageVQVAEConfig

#: One quantizer spec per variant of issue 13 (all on latent_dim=8).
SPECS: dict[str, dict[str, Any]] = {
    "ema": {"type": "ema", "codebook_size": 16, "kmeans_init": True, "kmeans_iters": 2},
    "vq_lowdim_l2": {"type": "vq", "codebook_size": 16, "codebook_dim": 4, "normalize": True},
    "residual": {
        "type": "residual",
        "num_codebooks": 3,
        "stage": {"type": "vq", "codebook_size": 16},
    },
    "product": {"type": "product", "groups": 2, "stage": {"type": "vq", "codebook_size": 16}},
    "fsq": {"type": "fsq", "levels": [5, 3, 3]},
}

#: K of each variant's codes.
NUM_CODEBOOKS = {"ema": 1, "vq_lowdim_l2": 1, "residual": 3, "product": 2, "fsq": 1}


def tiny_vqvae(variant: str = "ema", channels: int = 3, **kw: Any) -> ImageVQVAE:
    """A factor-4 VQ-VAE with 8 channels, one residual block and attention."""
    cfg: dict[str, Any] = {
        "channels": channels,
        "hidden": 8,
        "channel_mult": (1, 2),
        "num_res_blocks": 1,
        "res_hidden": 4,
        "attention": True,
        "latent_dim": 8,
        "quantizer": SPECS[variant],
    }
    cfg.update(kw)
    return ImageVQVAE(ImageVQVAEConfig(**cfg))


def tiny_vqvae2(channels: int = 3, **kw: Any) -> ImageVQVAE2:
    """A VQ-VAE-2 with bottom factor 4, top factor 8, residual bottom (K=2), VQ top."""
    cfg: dict[str, Any] = {
        "channels": channels,
        "hidden": 8,
        "num_res_blocks": 1,
        "res_hidden": 4,
        "attention": True,
        "latent_dim": 8,
        "quantizer": {"type": "residual", "num_codebooks": 2, "stage": SPECS["ema"]},
        "top_quantizer": {"type": "vq", "codebook_size": 16},
    }
    cfg.update(kw)
    return ImageVQVAE2(ImageVQVAE2Config(**cfg))
