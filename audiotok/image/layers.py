"""2-D building blocks of the image families: residual blocks, attention, encoder, decoder.

The encoder follows VQ-VAE (arXiv:1711.00937, section 4.1): stride-2 convolutions with 4x4
kernels (one per factor of 2), a 3x3 convolution, then residual blocks ``x + conv1x1(act(
conv3x3(act(x))))`` at the lowest resolution. Options from VQGAN (arXiv:2012.09841): GroupNorm
before each activation (independent of the batch size, unlike BatchNorm) and one
single-head self-attention block at the lowest resolution. The decoder mirrors the encoder
with 4x4 stride-2 transposed convolutions; its last layer is a plain 3x3 convolution, exposed
as ``Decoder2d.conv_out`` for taming's adaptive GAN weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "ResBlock2d", "AttnBlock2d", "Encoder2d", "Decoder2d", "norm_groups"]

#: Activations the image configs accept.
ACTIVATIONS = ("relu", "silu", "gelu")


def norm_groups(channels: int, max_groups: int = 32) -> int:
    """The largest power of two up to ``max_groups`` that divides ``channels``, keeping at
    least two channels per group (a 1x1 feature map then still normalises in training)."""
    g = max(1, min(max_groups, channels // 2))
    g = 1 << (g.bit_length() - 1)
    while channels % g:
        g //= 2
    return g


def _norm(channels: int, norm: bool) -> nn.Module:
    return nn.GroupNorm(norm_groups(channels), channels, eps=1e-6) if norm else nn.Identity()


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}[name]()


class ResBlock2d(nn.Module):
    """``x + conv1x1(act(norm(conv3x3(act(norm(x))))))``, channels unchanged.

    Args:
        channels: C in and out.
        hidden: channels inside the block.
        norm: GroupNorm before each activation.
        activation: one of :data:`ACTIVATIONS`.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, hidden: int, *, norm: bool, activation: str) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _norm(channels, norm),
            _act(activation),
            nn.Conv2d(channels, hidden, 3, padding=1),
            _norm(hidden, norm),
            _act(activation),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        return x + self.block(x)


class AttnBlock2d(nn.Module):
    """Single-head self-attention over all ``H * W`` positions, with a residual connection.

    Args:
        channels: C.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(channels), channels, eps=1e-6)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``."""
        h, w = x.shape[-2:]
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (n c) h w -> n b 1 (h w) c", n=3)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, 1, H*W, C)
        return x + self.proj(rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w))


def _bottleneck(
    channels: int, num_res_blocks: int, res_hidden: int, attention: bool, norm: bool, act: str
) -> list[nn.Module]:
    blocks: list[nn.Module] = []
    for i in range(num_res_blocks):
        blocks.append(ResBlock2d(channels, res_hidden, norm=norm, activation=act))
        if attention and i == 0:
            blocks.append(AttnBlock2d(channels))
    if attention and num_res_blocks == 0:
        blocks.append(AttnBlock2d(channels))
    return blocks


class Encoder2d(nn.Module):
    """Strided-conv encoder: ``(B, C_in, H, W) -> (B, C_out, H / 2**S, W / 2**S)``.

    Args:
        in_channels: C_in.
        out_channels: C_out (the latent dimension D, or features for a next level).
        hidden: base width; stage ``i`` has ``hidden * channel_mult[i]`` channels.
        channel_mult: one entry per stride-2 stage (S = ``len(channel_mult)``).
        num_res_blocks: residual blocks at the lowest resolution.
        res_hidden: channels inside each residual block.
        attention: one self-attention block at the lowest resolution.
        norm: GroupNorm before activations.
        activation: one of :data:`ACTIVATIONS`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        res_hidden: int,
        attention: bool = False,
        norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for i, mult in enumerate(channel_mult):
            out = hidden * mult
            if i > 0:
                layers += [_norm(ch, norm), _act(activation)]
            layers.append(nn.Conv2d(ch, out, 4, stride=2, padding=1))
            ch = out
        layers += [_norm(ch, norm), _act(activation), nn.Conv2d(ch, ch, 3, padding=1)]
        layers += _bottleneck(ch, num_res_blocks, res_hidden, attention, norm, activation)
        layers += [_norm(ch, norm), _act(activation), nn.Conv2d(ch, out_channels, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H / 2**S, W / 2**S)``; H, W multiples of 2**S."""
        return self.layers(x)


class Decoder2d(nn.Module):
    """Mirror of :class:`Encoder2d`: ``(B, C_in, h, w) -> (B, C_out, h * 2**S, w * 2**S)``.

    Args:
        in_channels: C_in (the latent dimension D).
        out_channels: C_out (image channels, or features for a next level).
        hidden, channel_mult, num_res_blocks, res_hidden, attention, norm, activation: as in
            :class:`Encoder2d` (``channel_mult`` listed input side first, like the encoder).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        res_hidden: int,
        attention: bool = False,
        norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        chs = [hidden * m for m in channel_mult]
        ch = chs[-1]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 3, padding=1)]
        layers += _bottleneck(ch, num_res_blocks, res_hidden, attention, norm, activation)
        for i in reversed(range(len(chs))):
            out = chs[max(i - 1, 0)]
            layers += [_norm(ch, norm), _act(activation)]
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            ch = out
        layers += [_norm(ch, norm), _act(activation)]
        self.layers = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(ch, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, h, w) -> (B, C_out, h * 2**S, w * 2**S)``."""
        return self.conv_out(self.layers(x))
