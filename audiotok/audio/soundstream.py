"""SoundStream-style neural codec (arXiv:2107.03312; EnCodec arXiv:2210.13438).

A SEANet encoder (``encoder="seanet"``) or a frame-rate log-STFT + ConvNeXt encoder
(``encoder="spectral"``, :mod:`audiotok.audio.spectral`), a quantizer built from the config's spec (by default a residual stack of
8 EMA codebooks of 1024 entries with quantizer dropout, so one model serves 1.5, 3 and 6 kbps
at 24 kHz / 75 Hz), and either a mirrored SEANet decoder (``decoder="seanet"``) or the
frame-rate ConvNeXt + inverse-STFT decoder of Vocos (``decoder="istft"``, arXiv:2306.00814),
which is several times cheaper on CPU. Adversarial training uses
:mod:`audiotok.audio.discriminators` and :mod:`audiotok.audio.losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from audiotok.audio.base import AudioCodec, CodecConfig
from audiotok.audio.istft import ISTFTDecoder
from audiotok.audio.layers import ACTIVATIONS
from audiotok.audio.seanet import SEANetDecoder, SEANetEncoder
from audiotok.audio.spectral import SpectralEncoder
from audiotok.quantize import build_quantizer

__all__ = ["SoundStreamConfig", "SoundStream", "default_residual_quantizer"]


def default_residual_quantizer() -> dict[str, Any]:
    """8 residual EMA codebooks x 1024 with quantizer dropout (6 kbps at 75 Hz)."""
    return {
        "type": "residual",
        "num_codebooks": 8,
        "dropout": 1.0,
        "stage": {
            "type": "ema",
            "codebook_size": 1024,
            "decay": 0.99,
            "kmeans_init": True,
            "dead_code_threshold": 2.0,
        },
    }


def _check_positive(name: str, values: Any) -> None:
    for v in values if isinstance(values, tuple) else (values,):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be positive integer(s), got {values!r}")


@dataclass(frozen=True)
class SoundStreamConfig(CodecConfig):
    """Configuration of :class:`SoundStream`.

    Attributes:
        sample_rate: Hz.
        channels: audio channels C.
        ratios: encoder strides, input side first; ``hop_length = prod(ratios)``. The
            spectral encoder uses only their product (its STFT hop).
        encoder: ``"seanet"`` (strided convs on samples) or ``"spectral"`` (log-magnitude
            STFT + ConvNeXt blocks at the frame rate).
        encoder_hidden: ConvNeXt width of the spectral encoder.
        encoder_layers: ConvNeXt blocks of the spectral encoder.
        encoder_embed_hidden: MLP width added to the spectral encoder's linear input
            projection (0: linear only, as before this option existed).
        encoder_n_fft: spectral encoder FFT size (0: ``4 * hop_length``).
        encoder_channels: SEANet encoder filters after the first conv (doubled per ratio).
        dilations: residual units (one per dilation) before each downsampling, mirrored in
            a SEANet decoder. ``(1,)`` is EnCodec's cheap choice, ``(1, 3, 9)`` SoundStream's.
        kernel_size: first/last conv kernel of the SEANet stacks.
        latent_dim: D, the quantized vector size.
        activation: ``"elu"`` or ``"snake"`` (or ``"relu"``, ``"gelu"``, ``"leaky_relu"``).
        weight_norm: weight-normalise the SEANet convs.
        causal: causal encoder (and SEANet decoder); codes at frame t never see the future.
        pad_mode: non-causal padding, ``"reflect"`` or ``"constant"``.
        lstm_layers: optional bottleneck LSTM layers (0: LSTM-free).
        decoder: ``"istft"`` (ConvNeXt + inverse STFT, frame rate) or ``"seanet"``.
        decoder_channels: SEANet decoder filters before its last conv.
        istft_hidden: ConvNeXt width of the istft decoder.
        istft_intermediate: ConvNeXt MLP width (0: ``3 * istft_hidden``).
        istft_layers: ConvNeXt blocks.
        istft_head_hidden: MLP width added to the istft decoder's linear head (0: linear
            head only, as before this option existed).
        n_fft: istft decoder FFT size (0: ``4 * hop_length``).
        pitch_head: width of a small MLP that reads a pitch salience curve off the quantized
            latent (0: none). A training aid (``loss.pitch``): it makes the codes carry
            pitch; it is not on the audio path and encoding and decoding never run it.
        pitch_bins: salience candidates the pitch head predicts.
        quantizer: a :func:`audiotok.quantize.build_quantizer` spec on ``latent_dim``.
    """

    sample_rate: int = 24000
    channels: int = 1
    ratios: tuple[int, ...] = (2, 4, 5, 8)
    encoder: str = "seanet"
    encoder_hidden: int = 256
    encoder_layers: int = 6
    encoder_embed_hidden: int = 0
    encoder_n_fft: int = 0
    encoder_channels: int = 32
    dilations: tuple[int, ...] = (1,)
    kernel_size: int = 7
    latent_dim: int = 128
    activation: str = "elu"
    weight_norm: bool = True
    causal: bool = False
    pad_mode: str = "reflect"
    lstm_layers: int = 0
    decoder: str = "istft"
    decoder_channels: int = 32
    istft_hidden: int = 256
    istft_intermediate: int = 0
    istft_layers: int = 8
    istft_head_hidden: int = 0
    n_fft: int = 0
    pitch_head: int = 0
    pitch_bins: int = 64
    quantizer: dict[str, Any] = field(default_factory=default_residual_quantizer)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("sample_rate", "channels", "ratios", "encoder_channels", "dilations"):
            _check_positive(name, getattr(self, name))
        for name in ("kernel_size", "latent_dim", "decoder_channels", "istft_hidden"):
            _check_positive(name, getattr(self, name))
        _check_positive("encoder_hidden", self.encoder_hidden)
        for name in (
            "lstm_layers",
            "istft_intermediate",
            "istft_layers",
            "istft_head_hidden",
            "n_fft",
            "encoder_layers",
            "encoder_embed_hidden",
            "encoder_n_fft",
            "pitch_head",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if not self.ratios:
            raise ValueError("ratios must not be empty")
        if self.encoder not in ("seanet", "spectral"):
            raise ValueError(f"encoder must be 'seanet' or 'spectral', got {self.encoder!r}")
        if self.encoder == "spectral" and (self.causal or self.lstm_layers):
            raise ValueError("the spectral encoder is neither causal nor recurrent")
        if self.encoder_n_fft and self.encoder_n_fft < math.prod(self.ratios):
            raise ValueError(
                f"encoder_n_fft ({self.encoder_n_fft}) must be >= hop_length "
                f"{math.prod(self.ratios)}"
            )
        if self.decoder not in ("istft", "seanet"):
            raise ValueError(f"decoder must be 'istft' or 'seanet', got {self.decoder!r}")
        if self.encoder_embed_hidden and self.encoder != "spectral":
            raise ValueError("encoder_embed_hidden applies to the spectral encoder only")
        if self.istft_head_hidden and self.decoder != "istft":
            raise ValueError("istft_head_hidden applies to the istft decoder only")
        _check_positive("pitch_bins", self.pitch_bins)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {self.pad_mode!r}")
        if not isinstance(self.quantizer, dict) or "type" not in self.quantizer:
            raise ValueError(f"quantizer must be a spec dict with a 'type', got {self.quantizer!r}")
        if self.n_fft and self.n_fft < math.prod(self.ratios):
            raise ValueError(f"n_fft ({self.n_fft}) must be >= hop_length {math.prod(self.ratios)}")

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return math.prod(self.ratios)


class SoundStream(AudioCodec):
    """SEANet or spectral encoder + quantizer + SEANet or inverse-STFT decoder.

    Args:
        config: a :class:`SoundStreamConfig`.

    ``forward(wav (B, C, T))`` returns a :class:`~audiotok.audio.base.CodecOutput`;
    ``encode`` gives ``(B, K, ceil(T / hop_length))`` codes, ``decode`` the audio back.
    """

    family = "soundstream"
    config_class = SoundStreamConfig

    def __init__(self, config: SoundStreamConfig | None = None) -> None:
        super().__init__()
        config = config or SoundStreamConfig()
        self.config = config
        shared = {
            "channels": config.channels,
            "dim": config.latent_dim,
            "ratios": config.ratios,
            "kernel_size": config.kernel_size,
            "last_kernel_size": config.kernel_size,
            "dilations": config.dilations,
            "activation": config.activation,
            "causal": config.causal,
            "pad_mode": config.pad_mode,
            "weight_norm": config.weight_norm,
            "lstm_layers": config.lstm_layers,
        }
        self.encoder: SEANetEncoder | SpectralEncoder
        if config.encoder == "spectral":
            self.encoder = SpectralEncoder(
                channels=config.channels,
                dim=config.latent_dim,
                hop_length=config.hop_length,
                n_fft=config.encoder_n_fft or 4 * config.hop_length,
                hidden=config.encoder_hidden,
                num_layers=config.encoder_layers,
                embed_hidden=config.encoder_embed_hidden,
            )
        else:
            self.encoder = SEANetEncoder(n_filters=config.encoder_channels, **shared)
        self.quantizer = build_quantizer(config.quantizer, config.latent_dim)
        if config.decoder == "seanet":
            self.decoder = SEANetDecoder(n_filters=config.decoder_channels, **shared)
        else:
            self.decoder = ISTFTDecoder(
                dim=config.latent_dim,
                channels=config.channels,
                hop_length=config.hop_length,
                n_fft=config.n_fft or None,
                hidden=config.istft_hidden,
                intermediate=config.istft_intermediate or None,
                num_layers=config.istft_layers,
                head_hidden=config.istft_head_hidden,
            )
        self.pitch_head: nn.Sequential | None = None
        if config.pitch_head:
            width = config.pitch_head
            self.pitch_head = nn.Sequential(
                nn.LayerNorm(config.latent_dim, eps=1e-6),
                nn.Linear(config.latent_dim, width),
                nn.GELU(),
                nn.Linear(width, width),
                nn.GELU(),
                nn.Linear(width, config.pitch_bins),
            )

    @property
    def hop_length(self) -> int:
        """Samples per code frame, ``prod(config.ratios)``."""
        return self.config.hop_length

    @property
    def receptive_field(self) -> int:
        """Samples of context either side of a chunk that the encoder's convs can see.

        Encoding a chunk with this much real audio on each side (and the chunk starting on
        the frame grid) gives the same codes as encoding the whole clip. An LSTM
        (``lstm_layers > 0``) has unbounded memory and is not counted.
        """
        return max(self.encoder.context())

    def encode_latent(self, wav: Tensor) -> Tensor:
        """``wav: (B, C, T' * hop_length)`` -> ``(B, latent_dim, T')``."""
        return self.encoder(wav)

    def decode_latent(self, quantized: Tensor) -> Tensor:
        """``quantized: (B, latent_dim, T')`` -> ``(B, C, T' * hop_length)``."""
        return self.decoder(quantized)

    def decode_latent_with_spectrum(self, quantized: Tensor) -> tuple[Tensor, Tensor | None]:
        """The audio and, with the istft decoder, its predicted log-magnitude frames."""
        if isinstance(self.decoder, ISTFTDecoder):
            return self.decoder.forward_with_spectrum(quantized)
        return self.decoder(quantized), None

    def spectrum_target(self, wav: Tensor) -> Tensor | None:
        """``wav (B, C, T' * hop)``'s log-magnitude in the istft head's framing, else None."""
        if isinstance(self.decoder, ISTFTDecoder):
            return self.decoder.head.log_spectrum(wav)
        return None
