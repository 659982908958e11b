"""Classic 1-D VQ-VAE on raw audio (van den Oord et al., arXiv:1711.00937).

Encoder: strided convs (kernel ``2 r``, stride ``r`` per ratio) with an activation between
them, a kernel-3 conv, then residual blocks ``x + conv1x1(act(conv3(act(x))))`` at the
bottleneck and a 1x1 projection to ``latent_dim``. The quantizer comes from the config's spec
(one VQ codebook by default, so codes are ``(B, 1, T')``; any spec works, e.g. a residual
stack). The decoder mirrors the encoder with transposed convs. Trained with a reconstruction
loss plus the quantizer's loss; no adversarial terms needed. Layers are shared with SEANet
(:mod:`audiotok.audio.layers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from audiotok.audio.base import AudioCodec, CodecConfig
from audiotok.audio.layers import (
    ACTIVATIONS,
    PaddedConv1d,
    PaddedConvTranspose1d,
    ResidualUnit,
    conv_context,
    make_activation,
)
from audiotok.quantize import build_quantizer

__all__ = ["AudioVQVAEConfig", "AudioVQVAE"]


@dataclass(frozen=True)
class AudioVQVAEConfig(CodecConfig):
    """Configuration of :class:`AudioVQVAE`.

    Attributes:
        sample_rate: Hz.
        channels: audio channels C.
        ratios: encoder strides, input side first; ``hop_length = prod(ratios)``.
        hidden: conv channels throughout.
        residual_hidden: channels inside each residual block.
        num_residual: residual blocks at each end of the bottleneck.
        latent_dim: D, the quantized vector size.
        activation: ``"relu"`` (paper) or any of :data:`~audiotok.audio.layers.ACTIVATIONS`.
        causal: left-only padding (causal codes and reconstruction).
        pad_mode: non-causal padding, ``"reflect"`` or ``"constant"``.
        quantizer: a :func:`audiotok.quantize.build_quantizer` spec on ``latent_dim``.
    """

    sample_rate: int = 24000
    channels: int = 1
    ratios: tuple[int, ...] = (2, 2, 2, 2, 2, 2)
    hidden: int = 128
    residual_hidden: int = 32
    num_residual: int = 2
    latent_dim: int = 64
    activation: str = "relu"
    causal: bool = False
    pad_mode: str = "reflect"
    quantizer: dict[str, Any] = field(default_factory=lambda: {"type": "vq", "codebook_size": 512})

    def __post_init__(self) -> None:
        super().__post_init__()
        positive = ("sample_rate", "channels", "hidden", "residual_hidden", "latent_dim")
        for name in (*positive, "ratios"):
            v = getattr(self, name)
            for x in v if isinstance(v, tuple) else (v,):
                if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                    raise ValueError(f"{name} must be positive integer(s), got {v!r}")
        if not self.ratios:
            raise ValueError("ratios must not be empty")
        if (
            isinstance(self.num_residual, bool)
            or not isinstance(self.num_residual, int)
            or self.num_residual < 0
        ):
            raise ValueError(
                f"num_residual must be a non-negative integer, got {self.num_residual!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {self.pad_mode!r}")
        if not isinstance(self.quantizer, dict) or "type" not in self.quantizer:
            raise ValueError(f"quantizer must be a spec dict with a 'type', got {self.quantizer!r}")

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return math.prod(self.ratios)


def _residual_stack(config: AudioVQVAEConfig) -> list[nn.Module]:
    return [
        ResidualUnit(
            config.hidden,
            hidden=config.residual_hidden,
            activation=config.activation,
            causal=config.causal,
            pad_mode=config.pad_mode,
        )
        for _ in range(config.num_residual)
    ]


class AudioVQVAE(AudioCodec):
    """Strided-conv encoder + quantizer + transposed-conv decoder.

    Args:
        config: an :class:`AudioVQVAEConfig`.
    """

    family = "audio_vqvae"
    config_class = AudioVQVAEConfig

    def __init__(self, config: AudioVQVAEConfig | None = None) -> None:
        super().__init__()
        config = config or AudioVQVAEConfig()
        self.config = config
        conv = {"causal": config.causal, "pad_mode": config.pad_mode}
        act = config.activation
        h = config.hidden
        enc: list[nn.Module] = []
        for i, ratio in enumerate(config.ratios):
            in_ch = config.channels if i == 0 else h
            enc += [
                PaddedConv1d(in_ch, h, 2 * ratio, stride=ratio, **conv),
                make_activation(act, h),
            ]
        enc.append(PaddedConv1d(h, h, 3, **conv))
        enc += _residual_stack(config)
        enc += [make_activation(act, h), PaddedConv1d(h, config.latent_dim, 1, **conv)]
        self.encoder = nn.Sequential(*enc)

        self.quantizer = build_quantizer(config.quantizer, config.latent_dim)

        dec: list[nn.Module] = [PaddedConv1d(config.latent_dim, h, 3, **conv)]
        dec += _residual_stack(config)
        for ratio in reversed(config.ratios):
            dec += [
                make_activation(act, h),
                PaddedConvTranspose1d(h, h, 2 * ratio, stride=ratio, causal=config.causal),
            ]
        dec += [make_activation(act, h), PaddedConv1d(h, config.channels, 7, **conv)]
        self.decoder = nn.Sequential(*dec)

    @property
    def hop_length(self) -> int:
        """Samples per code frame, ``prod(config.ratios)``."""
        return self.config.hop_length

    @property
    def receptive_field(self) -> int:
        """Samples of context either side of a chunk that the encoder can see."""
        return max(conv_context(self.encoder))

    def encode_latent(self, wav: Tensor) -> Tensor:
        """``wav: (B, C, T' * hop_length)`` -> ``(B, latent_dim, T')``."""
        return self.encoder(wav)

    def decode_latent(self, quantized: Tensor) -> Tensor:
        """``quantized: (B, latent_dim, T')`` -> ``(B, C, T' * hop_length)``."""
        return self.decoder(quantized)
