"""VQ-VAE-2: a top/bottom hierarchy of quantized latents (Razavi et al., arXiv:1906.00446).

The bottom encoder maps the image to features at ``H / fb`` (``fb = 2 ** len(
bottom_channel_mult)``, 4 by default); the top encoder maps those to ``H / ft`` (``ft = fb *
2 ** len(top_channel_mult)``, 8 by default), where the top quantizer picks global codes. A
top decoder brings the quantized top back to the bottom grid, where it is concatenated with
the bottom features and projected (1x1) to the bottom quantizer's input, so the bottom codes
only carry what the top codes miss. The image decoder sees the upsampled top and the bottom
quantized vectors side by side. Same data flow as rosinality's ``vqvae.py``, built from this
package's :mod:`~audiotok.image.layers`.

Codes layout (the tokenizer contract wants one ``(B, K, H', W')`` tensor): ``encode`` returns
the **packed** codes on the top grid, ``(B, Kt + r*r*Kb, H / ft, W / ft)`` with ``r = ft / fb``
(2 by default): rows ``[0, Kt)`` are the top codes, the following rows are the bottom codes
folded space-to-depth, ``packed[:, Kt + (k * r + p) * r + q, i, j] = bottom[:, k, i * r + p,
j * r + q]``. This is lossless and adds no redundant tokens; :meth:`ImageVQVAE2.unpack_codes`
and :meth:`ImageVQVAE2.pack_codes` convert, and :meth:`ImageVQVAE2.encode_levels` /
:meth:`ImageVQVAE2.decode_levels` work on ``VQVAE2Codes(top, bottom)`` directly, which is what
the paper's two priors train on (a top prior on ``packed[:, :Kt]``, then a bottom prior
conditioned on it). Both levels must share ``codebook_size``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from audiotok.image.base import ImageCodec
from audiotok.image.config import ImageConfig, check_int, check_spec
from audiotok.image.layers import ACTIVATIONS, Decoder2d, Encoder2d
from audiotok.quantize import build_quantizer

__all__ = ["ImageVQVAE2Config", "ImageVQVAE2", "VQVAE2Codes"]


class VQVAE2Codes(NamedTuple):
    """The codes of both levels.

    Attributes:
        top: ``(B, Kt, H / ft, W / ft)`` long.
        bottom: ``(B, Kb, H / fb, W / fb)`` long.
    """

    top: Tensor
    bottom: Tensor


@dataclass(frozen=True)
class ImageVQVAE2Config(ImageConfig):
    """Configuration of :class:`ImageVQVAE2` (defaults: the paper's 256 px layout scaled down).

    Attributes:
        channels: image channels C.
        hidden: conv width of the encoders/decoders (times each ``channel_mult`` entry).
        bottom_channel_mult: stride-2 stages of the bottom encoder (``fb = 2 ** len``).
        top_channel_mult: further stride-2 stages of the top encoder (``ft = fb * 2 ** len``).
        num_res_blocks: residual blocks at the lowest resolution of each encoder/decoder.
        res_hidden: channels inside each residual block.
        attention: self-attention at the top level (top encoder and top decoder).
        norm: GroupNorm before activations (off: rosinality's plain ReLU network).
        activation: one of :data:`~audiotok.image.layers.ACTIVATIONS`.
        latent_dim: D of both quantizers.
        quantizer: the bottom quantizer's spec (an EMA codebook by default, as in the paper).
        top_quantizer: the top quantizer's spec; ``None`` uses ``quantizer`` (same
            ``codebook_size`` required either way).
    """

    channels: int = 3
    hidden: int = 128
    bottom_channel_mult: tuple[int, ...] = (1, 1)
    top_channel_mult: tuple[int, ...] = (1,)
    num_res_blocks: int = 2
    res_hidden: int = 32
    attention: bool = False
    norm: bool = True
    activation: str = "relu"
    latent_dim: int = 64
    quantizer: dict[str, Any] = field(
        default_factory=lambda: {"type": "ema", "codebook_size": 512, "decay": 0.99}
    )
    top_quantizer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("channels", "hidden", "res_hidden", "latent_dim"):
            check_int(name, getattr(self, name))
        for name in ("bottom_channel_mult", "top_channel_mult"):
            check_int(name, getattr(self, name))
        check_int("num_res_blocks", self.num_res_blocks, minimum=0)
        levels = len(self.bottom_channel_mult) + len(self.top_channel_mult)
        if not self.bottom_channel_mult or not self.top_channel_mult or levels > 5:
            raise ValueError(
                "bottom_channel_mult and top_channel_mult need at least one entry each and "
                f"at most 5 together, got {self.bottom_channel_mult!r}, {self.top_channel_mult!r}"
            )
        for name in ("attention", "norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        check_spec("quantizer", self.quantizer)
        if self.top_quantizer is not None:
            check_spec("top_quantizer", self.top_quantizer)

    @property
    def bottom_downsample_factor(self) -> int:
        """fb, pixels per bottom code along each side."""
        return 2 ** len(self.bottom_channel_mult)

    @property
    def downsample_factor(self) -> int:
        """ft, pixels per top code (and per packed code) along each side."""
        return self.bottom_downsample_factor * 2 ** len(self.top_channel_mult)


class ImageVQVAE2(ImageCodec):
    """Two-level hierarchical VQ-VAE; ``encode`` returns packed codes (see the module doc).

    Args:
        config: an :class:`ImageVQVAE2Config`.

    Raises:
        ValueError: when the two quantizers' ``codebook_size`` differ.
    """

    family = "image_vqvae2"
    config_class = ImageVQVAE2Config

    def __init__(self, config: ImageVQVAE2Config | None = None) -> None:
        super().__init__()
        config = config or ImageVQVAE2Config()
        self.config = config
        common = {
            "hidden": config.hidden,
            "num_res_blocks": config.num_res_blocks,
            "res_hidden": config.res_hidden,
            "norm": config.norm,
            "activation": config.activation,
        }
        top = {**common, "channel_mult": config.top_channel_mult, "attention": config.attention}
        bottom = {**common, "channel_mult": config.bottom_channel_mult, "attention": False}
        d, h = config.latent_dim, config.hidden
        self.encoder_bottom = Encoder2d(config.channels, h, **bottom)
        self.encoder_top = Encoder2d(h, d, **top)
        self.quantizer_top = build_quantizer(config.top_quantizer or config.quantizer, d)
        self.decoder_top = Decoder2d(d, d, **top)
        self.proj_bottom = nn.Conv2d(d + h, d, 1)
        self.quantizer = build_quantizer(config.quantizer, d)  # the bottom one
        self.upsample_top = nn.Sequential(
            *[nn.ConvTranspose2d(d, d, 4, stride=2, padding=1) for _ in config.top_channel_mult]
        )
        self.decoder = Decoder2d(2 * d, config.channels, **bottom)
        if self.quantizer_top.codebook_size != self.quantizer.codebook_size:
            raise ValueError(
                "top and bottom quantizers must share codebook_size, got "
                f"{self.quantizer_top.codebook_size} and {self.quantizer.codebook_size}"
            )

    # -- properties ---------------------------------------------------------------------
    @property
    def downsample_factor(self) -> int:
        """ft, pixels per packed (and top) code along each side."""
        return self.config.downsample_factor

    @property
    def bottom_downsample_factor(self) -> int:
        """fb, pixels per bottom code along each side."""
        return self.config.bottom_downsample_factor

    @property
    def ratio(self) -> int:
        """r = ft / fb, bottom codes per top code along each side."""
        return self.downsample_factor // self.bottom_downsample_factor

    @property
    def top_num_codebooks(self) -> int:
        """Kt, code rows of the top level."""
        return int(self.quantizer_top.num_codebooks)

    @property
    def bottom_num_codebooks(self) -> int:
        """Kb, code rows of the bottom level."""
        return int(self.quantizer.num_codebooks)

    @property
    def num_codebooks(self) -> int:
        """K of the packed codes, ``Kt + r * r * Kb``."""
        return self.top_num_codebooks + self.ratio**2 * self.bottom_num_codebooks

    @property
    def supports_partial_codebooks(self) -> bool:
        """False: packed codes always carry both levels."""
        return False

    @property
    def last_layer(self) -> Tensor:
        """Weight of the image decoder's output convolution."""
        return self.decoder.conv_out.weight

    # -- levels -------------------------------------------------------------------------
    def pack_codes(self, top: Tensor, bottom: Tensor) -> Tensor:
        """``top (B, Kt, h, w)``, ``bottom (B, Kb, h * r, w * r)`` -> ``(B, K, h, w)``."""
        r = self.ratio
        if bottom.shape[-2:] != (top.shape[-2] * r, top.shape[-1] * r):
            raise ValueError(
                f"bottom codes {tuple(bottom.shape)} must be {r}x the top grid {tuple(top.shape)}"
            )
        folded = rearrange(bottom, "b k (h p) (w q) -> b (k p q) h w", p=r, q=r)
        return torch.cat([top, folded], dim=1)

    def unpack_codes(self, codes: Tensor) -> VQVAE2Codes:
        """``(B, K, h, w)`` packed codes -> ``VQVAE2Codes(top, bottom)``; see :meth:`pack_codes`."""
        self._check_codes(codes)
        kt, r = self.top_num_codebooks, self.ratio
        bottom = rearrange(codes[:, kt:], "b (k p q) h w -> b k (h p) (w q)", p=r, q=r)
        return VQVAE2Codes(codes[:, :kt], bottom)

    @torch.no_grad()
    def encode_levels(self, image: Tensor) -> VQVAE2Codes:
        """``(B, C, H, W)`` -> ``VQVAE2Codes(top (B, Kt, H/ft, W/ft), bottom (B, Kb, H/fb,
        W/fb))`` (sizes rounded up)."""
        return self.unpack_codes(self.encode(image))

    def decode_levels(
        self, top: Tensor, bottom: Tensor, size: tuple[int, int] | None = None
    ) -> Tensor:
        """Both levels' codes -> ``(B, C, H, W)``; ``size`` crops as in :meth:`decode`."""
        return self.decode(self.pack_codes(top, bottom), size=size)

    # -- hooks ----------------------------------------------------------------------------
    def _bottom_input(self, features: Tensor, quantized_top: Tensor) -> Tensor:
        cond = self.decoder_top(quantized_top)  # (B, D, H/fb, W/fb)
        z = self.proj_bottom(torch.cat([cond, features], dim=1))
        return rearrange(z, "b d h w -> b h w d")

    def _decode_quantized(self, quantized_top: Tensor, quantized_bottom: Tensor) -> Tensor:
        up = self.upsample_top(quantized_top)
        return self.decoder(torch.cat([up, quantized_bottom], dim=1))

    def _forward_padded(
        self, image: Tensor, k: int | None
    ) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        features = self.encoder_bottom(image)
        z_top = rearrange(self.encoder_top(features), "b d h w -> b h w d")
        q_top = self.quantizer_top(z_top)
        quantized_top = rearrange(q_top.quantized, "b h w d -> b d h w")
        q_bottom = self.quantizer(self._bottom_input(features, quantized_top))
        quantized_bottom = rearrange(q_bottom.quantized, "b h w d -> b d h w")
        recon = self._decode_quantized(quantized_top, quantized_bottom)
        top = self._codes_out(q_top.codes, self.quantizer_top)
        codes = self.pack_codes(top, self._codes_out(q_bottom.codes))
        metrics = {f"top/{n}": v for n, v in q_top.metrics.items()}
        metrics.update({f"bottom/{n}": v for n, v in q_bottom.metrics.items()})
        return recon, codes, q_top.loss + q_bottom.loss, metrics

    def _encode_padded(self, image: Tensor, k: int) -> Tensor:
        features = self.encoder_bottom(image)
        z_top = rearrange(self.encoder_top(features), "b d h w -> b h w d")
        top = self._codes_out(self.quantizer_top.encode(z_top), self.quantizer_top)
        quantized_top = self._codes_to_quantized(self.quantizer_top, top)
        z_bottom = self._bottom_input(features, quantized_top)
        bottom = self._codes_out(self.quantizer.encode(z_bottom))
        return self.pack_codes(top, bottom)

    def _decode_codes(self, codes: Tensor) -> Tensor:
        top, bottom = self.unpack_codes(codes)
        quantized_top = self._codes_to_quantized(self.quantizer_top, top)
        quantized_bottom = self._codes_to_quantized(self.quantizer, bottom)
        return self._decode_quantized(quantized_top, quantized_bottom)
