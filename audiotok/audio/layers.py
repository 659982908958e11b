"""1-D building blocks shared by the audio families: padded convs, Snake, residual units.

``PaddedConv1d`` pads so that a stride-``s`` conv maps ``L`` samples (a multiple of ``s``) to
exactly ``L / s`` frames: all padding on the left when ``causal`` (the output at ``t`` sees
inputs ``<= t`` only), otherwise split evenly (reflect by default). ``PaddedConvTranspose1d``
trims its overhang the same way so ``L`` frames give exactly ``L * s`` samples. Both keep
their geometry (kernel, stride, dilation, padding) as attributes so a model can compute its
receptive field with :func:`conv_context`.

Snake activation: ``x + sin(alpha x)^2 / alpha`` with a learned per-channel ``alpha``
(Ziyin et al., arXiv:2006.08195; used for audio by BigVGAN/DAC). Residual units follow
SEANet / SoundStream (arXiv:2107.03312, arXiv:2210.13438).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

__all__ = [
    "PaddedConv1d",
    "PaddedConvTranspose1d",
    "Snake",
    "make_activation",
    "ResidualUnit",
    "LSTMBlock",
    "conv_context",
    "pad1d",
    "ACTIVATIONS",
]

ACTIVATIONS = ("elu", "snake", "relu", "gelu", "leaky_relu")


def pad1d(x: Tensor, left: int, right: int, mode: str) -> Tensor:
    """Pad the last axis; reflect padding on inputs too short for it pads zeros first."""
    if mode != "reflect" or max(left, right) < x.shape[-1]:
        return F.pad(x, (left, right), mode=mode)
    extra = max(left, right) - x.shape[-1] + 1
    padded = F.pad(F.pad(x, (0, extra)), (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class PaddedConv1d(nn.Module):
    """``nn.Conv1d`` with causal or centred padding and optional weight norm.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel length.
        stride: stride; ``L`` (a multiple of ``stride``) maps to ``L // stride``.
        dilation: dilation.
        groups: conv groups.
        causal: put all padding on the left.
        pad_mode: ``"reflect"`` or ``"constant"`` (zeros) for non-causal padding; causal
            padding is always zeros.
        weight_norm: reparametrise the weight with weight normalisation.
        bias: add a bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        causal: bool = False,
        pad_mode: str = "reflect",
        weight_norm: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")
        conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.conv = _weight_norm(conv) if weight_norm else conv
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        total = (kernel_size - 1) * dilation + 1 - stride
        if total < 0:
            raise ValueError(f"kernel_size {kernel_size} is smaller than stride {stride}")
        self.pad_left = total if causal else total - total // 2
        self.pad_right = 0 if causal else total // 2
        self.pad_mode = "constant" if causal else pad_mode

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C_in, L)`` -> ``(B, C_out, L // stride)``."""
        return self.conv(pad1d(x, self.pad_left, self.pad_right, self.pad_mode))


class PaddedConvTranspose1d(nn.Module):
    """``nn.ConvTranspose1d`` that trims its overhang so ``L`` frames give ``L * stride``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel length (``>= stride``; ``2 * stride`` is usual).
        stride: upsampling factor.
        causal: trim the overhang on the right only (no look-ahead).
        weight_norm: reparametrise the weight with weight normalisation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        causal: bool = False,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} is smaller than stride {stride}")
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.conv = _weight_norm(conv) if weight_norm else conv
        self.kernel_size, self.stride = kernel_size, stride
        total = kernel_size - stride
        self.trim_right = total if causal else total // 2
        self.trim_left = total - self.trim_right

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C_in, L)`` -> ``(B, C_out, L * stride)``."""
        y = self.conv(x)
        return y[..., self.trim_left : y.shape[-1] - self.trim_right]


class Snake(nn.Module):
    """Snake activation ``x + sin(alpha * x)^2 / alpha``, one learned ``alpha`` per channel.

    Periodic inductive bias for audio (arXiv:2006.08195). Input ``(B, C, T)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C, T)`` -> same shape."""
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + 1e-9)


def make_activation(name: str, channels: int) -> nn.Module:
    """An activation module by name (one of :data:`ACTIVATIONS`); Snake needs ``channels``."""
    if name == "elu":
        return nn.ELU()
    if name == "snake":
        return Snake(channels)
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


class ResidualUnit(nn.Module):
    """``x + conv1x1(act(conv_k,d(act(x))))``: a SEANet residual unit.

    Args:
        channels: input and output channels.
        dilation: dilation of the ``kernel_size`` conv.
        kernel_size: kernel of the first conv (3 in SEANet).
        hidden: channels between the two convs (SEANet uses ``channels // 2``).
        activation: name from :data:`ACTIVATIONS`.
        causal, pad_mode, weight_norm: as for :class:`PaddedConv1d`.
    """

    def __init__(
        self,
        channels: int,
        *,
        dilation: int = 1,
        kernel_size: int = 3,
        hidden: int | None = None,
        activation: str = "elu",
        causal: bool = False,
        pad_mode: str = "reflect",
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        hidden = hidden or max(1, channels // 2)
        conv = {"causal": causal, "pad_mode": pad_mode, "weight_norm": weight_norm}
        self.block = nn.Sequential(
            make_activation(activation, channels),
            PaddedConv1d(channels, hidden, kernel_size, dilation=dilation, **conv),
            make_activation(activation, hidden),
            PaddedConv1d(hidden, channels, 1, **conv),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C, T)`` -> same shape."""
        return x + self.block(x)


class LSTMBlock(nn.Module):
    """A skip-connected LSTM over time on ``(B, C, T)``; unidirectional, so it is causal."""

    def __init__(self, channels: int, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(channels, channels, num_layers, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C, T)`` -> same shape."""
        y, _ = self.lstm(x.transpose(1, 2))
        return x + y.transpose(1, 2)


def conv_context(layers: Iterable[nn.Module]) -> tuple[int, int]:
    """Samples of left and right context that one output frame of a conv stack depends on.

    Args:
        layers: modules in input-to-output order; every :class:`PaddedConv1d` among them (in
            ``modules()`` order) is treated as one step of a chain. Residual branches are
            wider than their skips, so walking the branch convs bounds the stack.

    Returns:
        ``(left, right)``: how many samples before the start and after the end of the
        output frame's own ``hop`` samples influence it (``right == 0`` for a causal stack).
    """
    convs = [m for layer in layers for m in layer.modules() if isinstance(m, PaddedConv1d)]
    lo, hi = 0, 0  # input interval of frame 0, walking from the output down to the samples
    hop = 1
    for conv in reversed(convs):
        lo = lo * conv.stride - conv.pad_left
        hi = hi * conv.stride - conv.pad_left + (conv.kernel_size - 1) * conv.dilation
        hop *= conv.stride
    return max(0, -lo), max(0, hi - (hop - 1))
