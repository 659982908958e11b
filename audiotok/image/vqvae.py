"""2-D convolutional VQ-VAE whose variant comes from the quantizer spec.

Encoder and decoder are :class:`~audiotok.image.layers.Encoder2d` / ``Decoder2d``: stride-2
4x4 convolutions (downsampling factor ``2 ** len(channel_mult)``, 2 to 16), residual blocks
and optional self-attention at the lowest resolution. The quantizer is any
:func:`audiotok.quantize.build_quantizer` spec on ``latent_dim`` vectors; the named variants
of :data:`QUANTIZER_PRESETS` are

- ``vqvae``: one EMA codebook with k-means init and dead-code restart (VQ-VAE,
  arXiv:1711.00937, appendix A.1 for the EMA update);
- ``product``: several codes per latent position from independent codebooks over channel
  groups (the multi-code latents of the paper's CIFAR-10 model, section 4.1);
- ``rqvae``: a residual stack of shared-size codebooks, codes ``(B, K, H', W')`` coarse to
  fine (RQ-VAE, arXiv:2203.01941);
- ``fsq``: finite scalar quantization, no codebook to learn (arXiv:2309.15505);
- ``vit_vqgan``: low-dimensional l2-normalised codes, i.e. a cosine lookup after a linear
  projection (ViT-VQGAN, arXiv:2110.04627, section 3.2).

Training objective (what a trainer adds): a reconstruction loss plus ``output.loss``; a GAN
and perceptual terms from :mod:`audiotok.image.losses` turn this into a VQGAN.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from audiotok.image.base import ImageCodec
from audiotok.image.config import ImageConfig, check_int, check_spec
from audiotok.image.layers import ACTIVATIONS, Decoder2d, Encoder2d
from audiotok.quantize import build_quantizer

__all__ = ["ImageVQVAEConfig", "ImageVQVAE", "QUANTIZER_PRESETS", "quantizer_preset"]

#: Quantizer specs of the named variants (codebook sizes are starting points, not tuned).
QUANTIZER_PRESETS: dict[str, dict[str, Any]] = {
    "vqvae": {"type": "ema", "codebook_size": 512, "decay": 0.99, "kmeans_init": True},
    "product": {"type": "product", "groups": 4, "stage": {"type": "ema", "codebook_size": 256}},
    "rqvae": {
        "type": "residual",
        "num_codebooks": 4,
        "stage": {"type": "ema", "codebook_size": 512},
    },
    "fsq": {"type": "fsq", "levels": [8, 5, 5, 5]},
    "vit_vqgan": {"type": "vq", "codebook_size": 1024, "codebook_dim": 8, "normalize": True},
}


def quantizer_preset(name: str) -> dict[str, Any]:
    """A private copy of the spec of a named variant in :data:`QUANTIZER_PRESETS`.

    Raises:
        ValueError: on an unknown name.
    """
    if name not in QUANTIZER_PRESETS:
        raise ValueError(f"unknown variant {name!r}; expected one of {sorted(QUANTIZER_PRESETS)}")
    return copy.deepcopy(QUANTIZER_PRESETS[name])


@dataclass(frozen=True)
class ImageVQVAEConfig(ImageConfig):
    """Configuration of :class:`ImageVQVAE`.

    Attributes:
        channels: image channels C (1 or 3 usually).
        hidden: base conv width; stage ``i`` has ``hidden * channel_mult[i]`` channels.
        channel_mult: one entry per stride-2 stage, 1 to 4 stages, so the downsampling factor
            is ``2 ** len(channel_mult)`` (2, 4, 8 or 16).
        num_res_blocks: residual blocks at the lowest resolution, in encoder and decoder.
        res_hidden: channels inside each residual block.
        attention: one self-attention block at the lowest resolution (each side).
        norm: GroupNorm before activations (off: the paper's plain ReLU network).
        activation: ``"relu"`` (paper), ``"silu"`` (VQGAN) or ``"gelu"``.
        latent_dim: D, the size of the quantized vectors.
        quantizer: a :func:`audiotok.quantize.build_quantizer` spec on ``latent_dim``
            (see :data:`QUANTIZER_PRESETS`).
    """

    channels: int = 3
    hidden: int = 128
    channel_mult: tuple[int, ...] = (1, 1)
    num_res_blocks: int = 2
    res_hidden: int = 32
    attention: bool = False
    norm: bool = True
    activation: str = "relu"
    latent_dim: int = 64
    quantizer: dict[str, Any] = field(default_factory=lambda: quantizer_preset("vqvae"))

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("channels", "hidden", "res_hidden", "latent_dim", "channel_mult"):
            check_int(name, getattr(self, name))
        check_int("num_res_blocks", self.num_res_blocks, minimum=0)
        if not 1 <= len(self.channel_mult) <= 4:
            raise ValueError(
                "channel_mult needs 1 to 4 entries (downsampling factor 2 to 16), "
                f"got {self.channel_mult!r}"
            )
        for name in ("attention", "norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        check_spec("quantizer", self.quantizer)

    @property
    def downsample_factor(self) -> int:
        """Pixels per code along each side, ``2 ** len(channel_mult)``."""
        return 2 ** len(self.channel_mult)

    def network_kwargs(self) -> dict[str, Any]:
        """The keyword arguments :class:`Encoder2d` and :class:`Decoder2d` share."""
        return {
            "hidden": self.hidden,
            "channel_mult": self.channel_mult,
            "num_res_blocks": self.num_res_blocks,
            "res_hidden": self.res_hidden,
            "attention": self.attention,
            "norm": self.norm,
            "activation": self.activation,
        }


class ImageVQVAE(ImageCodec):
    """Conv encoder + quantizer + conv decoder on images.

    Args:
        config: an :class:`ImageVQVAEConfig` (default: the EMA VQ-VAE, RGB, factor 4).

    Shapes:
        ``encode: (B, C, H, W) -> (B, K, H', W')`` long, ``decode`` the reverse, with
        ``(H', W') = latent_shape(H, W)``.
    """

    family = "image_vqvae"
    config_class = ImageVQVAEConfig

    def __init__(self, config: ImageVQVAEConfig | None = None) -> None:
        super().__init__()
        config = config or ImageVQVAEConfig()
        self.config = config
        net = config.network_kwargs()
        self.encoder = Encoder2d(config.channels, config.latent_dim, **net)
        self.quantizer = build_quantizer(config.quantizer, config.latent_dim)
        self.decoder = Decoder2d(config.latent_dim, config.channels, **net)

    @property
    def downsample_factor(self) -> int:
        """f, pixels per code along each side."""
        return self.config.downsample_factor

    @property
    def last_layer(self) -> Tensor:
        """Weight of the decoder's output convolution ``(C, hidden, 3, 3)``."""
        return self.decoder.conv_out.weight

    def encode_latent(self, image: Tensor) -> Tensor:
        """``image: (B, C, H' * f, W' * f)`` -> ``(B, latent_dim, H', W')``."""
        return self.encoder(image)

    def decode_latent(self, quantized: Tensor) -> Tensor:
        """``quantized: (B, latent_dim, H', W')`` -> ``(B, C, H' * f, W' * f)``."""
        return self.decoder(quantized)
