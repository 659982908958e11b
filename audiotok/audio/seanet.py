"""SEANet convolutional encoder and decoder (SoundStream arXiv:2107.03312, EnCodec arXiv:2210.13438).

Encoder: a ``kernel_size`` conv to ``n_filters`` channels, then for each ratio ``r`` a stack
of residual units (dilations e.g. 1, 3, 9) followed by a strided conv (kernel ``2 r``,
stride ``r``) that doubles the channels, then an optional LSTM and a final conv to the
latent ``dim``. ``(B, C, T) -> (B, D, T / hop)`` with ``hop = prod(ratios)`` (``T`` must be a
multiple of ``hop``; the codec pads). The decoder mirrors it with transposed convs and
gives exactly ``T' * hop`` samples. With ``causal=True`` every conv pads on the left and
every transposed conv trims on the right, so nothing looks ahead.

``ratios`` are given in encoder order (input side first); the decoder applies them reversed.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from audiotok.audio.layers import (
    LSTMBlock,
    PaddedConv1d,
    PaddedConvTranspose1d,
    ResidualUnit,
    conv_context,
    make_activation,
)

__all__ = ["SEANetEncoder", "SEANetDecoder"]


class SEANetEncoder(nn.Module):
    """Waveform ``(B, C, T)`` to latent ``(B, D, T / hop)``.

    Args:
        channels: audio channels C.
        dim: latent dimension D.
        n_filters: channels after the first conv; doubled at every downsampling.
        ratios: strides in encoder order; ``hop = prod(ratios)``.
        kernel_size: kernel of the first conv.
        last_kernel_size: kernel of the final conv to ``dim``.
        residual_kernel_size: kernel of the residual units' dilated conv.
        dilations: one residual unit per dilation before each downsampling.
        activation: ``"elu"``, ``"snake"``, ...
        causal: left padding only.
        pad_mode: non-causal padding, ``"reflect"`` or ``"constant"``.
        weight_norm: weight-normalise every conv.
        lstm_layers: layers of a skip-connected LSTM at the bottleneck (0: none).
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        dim: int = 128,
        n_filters: int = 32,
        ratios: tuple[int, ...] = (2, 4, 5, 8),
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilations: tuple[int, ...] = (1, 3, 9),
        activation: str = "elu",
        causal: bool = False,
        pad_mode: str = "reflect",
        weight_norm: bool = True,
        lstm_layers: int = 0,
    ) -> None:
        super().__init__()
        self.hop_length = math.prod(ratios)
        conv = {"causal": causal, "pad_mode": pad_mode, "weight_norm": weight_norm}
        layers: list[nn.Module] = [PaddedConv1d(channels, n_filters, kernel_size, **conv)]
        width = n_filters
        for ratio in ratios:
            for d in dilations:
                layers.append(
                    ResidualUnit(
                        width,
                        dilation=d,
                        kernel_size=residual_kernel_size,
                        activation=activation,
                        **conv,
                    )
                )
            layers += [
                make_activation(activation, width),
                PaddedConv1d(width, 2 * width, 2 * ratio, stride=ratio, **conv),
            ]
            width *= 2
        if lstm_layers:
            layers.append(LSTMBlock(width, lstm_layers))
        layers += [
            make_activation(activation, width),
            PaddedConv1d(width, dim, last_kernel_size, **conv),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, wav: Tensor) -> Tensor:
        """``wav: (B, C, T)`` with ``T % hop_length == 0`` -> ``(B, D, T // hop_length)``."""
        return self.layers(wav)

    def context(self) -> tuple[int, int]:
        """``(left, right)`` samples of context per frame (convs only; an LSTM adds more)."""
        return conv_context(self.layers)


class SEANetDecoder(nn.Module):
    """Latent ``(B, D, T')`` to waveform ``(B, C, T' * hop)``, mirroring :class:`SEANetEncoder`.

    Args:
        channels: audio channels C.
        dim: latent dimension D.
        n_filters: channels before the last conv; the first conv has
            ``n_filters * 2 ** len(ratios)`` channels, halved at every upsampling.
        ratios: the *encoder's* strides; applied here in reverse order.
        kernel_size, last_kernel_size, residual_kernel_size, dilations, activation, causal,
            pad_mode, weight_norm, lstm_layers: as for :class:`SEANetEncoder`.
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        dim: int = 128,
        n_filters: int = 32,
        ratios: tuple[int, ...] = (2, 4, 5, 8),
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilations: tuple[int, ...] = (1, 3, 9),
        activation: str = "elu",
        causal: bool = False,
        pad_mode: str = "reflect",
        weight_norm: bool = True,
        lstm_layers: int = 0,
    ) -> None:
        super().__init__()
        self.hop_length = math.prod(ratios)
        conv = {"causal": causal, "pad_mode": pad_mode, "weight_norm": weight_norm}
        width = n_filters * 2 ** len(ratios)
        layers: list[nn.Module] = [PaddedConv1d(dim, width, kernel_size, **conv)]
        if lstm_layers:
            layers.append(LSTMBlock(width, lstm_layers))
        for ratio in reversed(ratios):
            layers += [
                make_activation(activation, width),
                PaddedConvTranspose1d(
                    width,
                    width // 2,
                    2 * ratio,
                    stride=ratio,
                    causal=causal,
                    weight_norm=weight_norm,
                ),
            ]
            width //= 2
            for d in dilations:
                layers.append(
                    ResidualUnit(
                        width,
                        dilation=d,
                        kernel_size=residual_kernel_size,
                        activation=activation,
                        **conv,
                    )
                )
        layers += [
            make_activation(activation, width),
            PaddedConv1d(width, channels, last_kernel_size, **conv),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        """``latent: (B, D, T')`` -> ``(B, C, T' * hop_length)``."""
        return self.layers(latent)
