"""GAN discriminators for codec training: multi-scale STFT (EnCodec) and multi-period (HiFi-GAN).

* :class:`MultiScaleSTFTDiscriminator` (EnCodec, arXiv:2210.13438, section 3.4): for each FFT
  size, the complex STFT's real and imaginary parts are stacked as ``2 C`` input channels of a
  2-D conv net over (time, frequency), with dilations along time and stride 2 along frequency.
* :class:`MultiPeriodDiscriminator` (HiFi-GAN, arXiv:2010.05646, section 2.2): for each period
  ``p`` the waveform is folded into a ``(T / p, p)`` image and convolved along the first axis
  only, so each sub-discriminator sees equally spaced samples.

Both take ``wav: (B, C, T)`` and return ``(logits, features)``: one logits tensor per
sub-discriminator and, for each, the list of its intermediate feature maps (for the
feature-matching loss). Channel widths and depths are constructor arguments so tests can use
tiny ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from audiotok.audio.layers import pad1d

__all__ = [
    "STFTDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "PeriodDiscriminator",
    "MultiPeriodDiscriminator",
]

_SLOPE = 0.2


class STFTDiscriminator(nn.Module):
    """One complex-STFT discriminator.

    Args:
        channels: audio channels C (the net sees ``2 C`` input planes, real and imaginary).
        filters: conv channels after the first layer.
        max_filters: cap on the channels as they grow by ``filters_scale`` per layer.
        filters_scale: channel growth factor per dilated layer.
        n_fft: FFT size; the window length too.
        hop_length: STFT hop (default ``n_fft // 4``).
        dilations: time dilations of the strided layers (one layer each).
        channels_last: run the 2-D convs in channels-last memory layout (NHWC), which
            oneDNN's CPU kernels prefer: ~9 % faster forward + backward on this project's CPU.
    """

    def __init__(
        self,
        *,
        channels: int = 1,
        filters: int = 32,
        max_filters: int = 1024,
        filters_scale: int = 1,
        n_fft: int = 1024,
        hop_length: int | None = None,
        dilations: tuple[int, ...] = (1, 2, 4),
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length or n_fft // 4
        self.channels_last = channels_last
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        width = filters
        convs = [weight_norm(nn.Conv2d(2 * channels, width, (3, 9), padding=(1, 4)))]
        for d in dilations:
            nxt = min(width * filters_scale, max_filters)
            convs.append(
                weight_norm(
                    nn.Conv2d(width, nxt, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))
                )
            )
            width = nxt
        convs.append(weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``wav: (B, C, T)`` -> ``(logits (B, 1, frames, F'), feature maps)``."""
        batch, channels, length = wav.shape
        spec = torch.stft(
            wav.reshape(batch * channels, length).float(),
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            normalized=True,
            return_complex=True,
        )  # (B*C, F, frames)
        spec = torch.view_as_real(spec).reshape(batch, channels, *spec.shape[1:], 2)
        x = spec.permute(0, 1, 4, 3, 2).reshape(batch, 2 * channels, spec.shape[3], -1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _SLOPE)
            features.append(x)
        return self.post(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec's MS-STFT discriminator: one :class:`STFTDiscriminator` per FFT size.

    Args:
        n_ffts: FFT sizes, one sub-discriminator each.
        channels: audio channels C.
        filters: conv channels of each sub-discriminator.
        max_filters, filters_scale, dilations, channels_last: as for
            :class:`STFTDiscriminator`.
    """

    def __init__(
        self,
        *,
        n_ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128),
        channels: int = 1,
        filters: int = 32,
        max_filters: int = 1024,
        filters_scale: int = 1,
        dilations: tuple[int, ...] = (1, 2, 4),
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(
                channels=channels,
                filters=filters,
                max_filters=max_filters,
                filters_scale=filters_scale,
                n_fft=n,
                dilations=dilations,
                channels_last=channels_last,
            )
            for n in n_ffts
        )

    def forward(self, wav: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        """``wav: (B, C, T)`` -> ``(logits per scale, feature maps per scale)``."""
        logits, features = [], []
        for disc in self.discriminators:
            out, feats = disc(wav)
            logits.append(out)
            features.append(feats)
        return logits, features


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN sub-discriminator over the waveform folded with one period.

    Args:
        period: fold ``(B, C, T)`` into ``(B, C, T / period, period)`` (right reflect-padded).
        channels: audio channels C.
        filters: channels of the first conv; multiplied by 4 per strided layer.
        max_filters: cap on the channels.
        num_layers: strided convs (kernel 5, stride 3 along time), then one unstrided conv.
    """

    def __init__(
        self,
        period: int,
        *,
        channels: int = 1,
        filters: int = 32,
        max_filters: int = 1024,
        num_layers: int = 4,
    ) -> None:
        super().__init__()
        self.period = period
        convs, width = [], channels
        for i in range(num_layers):
            nxt = min(filters * 4**i, max_filters)
            convs.append(weight_norm(nn.Conv2d(width, nxt, (5, 1), (3, 1), padding=(2, 0))))
            width = nxt
        convs.append(weight_norm(nn.Conv2d(width, width, (5, 1), padding=(2, 0))))
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``wav: (B, C, T)`` -> ``(logits (B, 1, T'', period), feature maps)``."""
        extra = -wav.shape[-1] % self.period
        x = pad1d(wav, 0, extra, "reflect") if extra else wav
        x = x.reshape(x.shape[0], x.shape[1], -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _SLOPE)
            features.append(x)
        return self.post(x), features


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD: one :class:`PeriodDiscriminator` per (prime) period.

    Args:
        periods: the periods, 2, 3, 5, 7, 11 in HiFi-GAN.
        channels, filters, max_filters, num_layers: as for :class:`PeriodDiscriminator`.
    """

    def __init__(
        self,
        *,
        periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        channels: int = 1,
        filters: int = 32,
        max_filters: int = 1024,
        num_layers: int = 4,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(
                p,
                channels=channels,
                filters=filters,
                max_filters=max_filters,
                num_layers=num_layers,
            )
            for p in periods
        )

    def forward(self, wav: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        """``wav: (B, C, T)`` -> ``(logits per period, feature maps per period)``."""
        logits, features = [], []
        for disc in self.discriminators:
            out, feats = disc(wav)
            logits.append(out)
            features.append(feats)
        return logits, features
