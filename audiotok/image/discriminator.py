"""PatchGAN discriminator for VQGAN training (pix2pix arXiv:1611.07004, VQGAN arXiv:2012.09841).

A stack of 4x4 convolutions: ``num_layers`` stride-2 layers that double the width (capped at
8x), one stride-1 layer, and a stride-1 projection to one logit per patch. Taming uses
BatchNorm here, which breaks at batch size 1 and couples the samples of a batch; this version
uses GroupNorm (independent of the batch) and optionally spectral normalisation
(arXiv:1802.05957) on every convolution. ``forward_features`` also returns the activations
of every layer for :func:`audiotok.image.losses.feature_matching_loss`.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from audiotok.image.layers import norm_groups

__all__ = ["PatchGAN"]


class PatchGAN(nn.Module):
    """Patch discriminator: ``(B, C, H, W) -> logits (B, 1, H'', W'')``.

    Args:
        in_channels: C of the images it judges.
        hidden: width of the first layer.
        num_layers: stride-2 layers (3 in pix2pix/taming: 70x70 receptive field).
        norm: GroupNorm after every inner convolution.
        spectral_norm: spectral-normalise every convolution's weight.

    Shapes:
        Each side of the input must be at least :meth:`min_size` pixels; the logit map is
        ``floor(H / 2**num_layers) - 2`` by the same for W.
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        hidden: int = 64,
        num_layers: int = 3,
        norm: bool = True,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers

        def conv(c_in: int, c_out: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1)
            nn.init.normal_(layer.weight, 0.0, 0.02)  # pix2pix/taming init
            nn.init.zeros_(layer.bias)
            return _spectral_norm(layer) if spectral_norm else layer

        def block(c_in: int, c_out: int, stride: int, use_norm: bool) -> nn.Sequential:
            parts = [conv(c_in, c_out, stride)]
            if use_norm:
                parts.append(nn.GroupNorm(norm_groups(c_out), c_out))
            parts.append(nn.LeakyReLU(0.2))
            return nn.Sequential(*parts)

        widths = [hidden * min(2**i, 8) for i in range(num_layers + 1)]
        blocks = [block(in_channels, widths[0], 2, False)]
        for i in range(1, num_layers):
            blocks.append(block(widths[i - 1], widths[i], 2, norm))
        blocks.append(block(widths[num_layers - 1], widths[num_layers], 1, norm))
        self.blocks = nn.ModuleList(blocks)
        self.head = conv(widths[num_layers], 1, 1)

    def min_size(self) -> int:
        """The smallest height/width the discriminator accepts (one logit left)."""
        return 3 * 2**self.num_layers

    def forward_features(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits and the activations of every block.

        Args:
            image: ``(B, C, H, W)`` float with ``H, W >= min_size()``.

        Returns:
            ``(logits (B, 1, H'', W''), [features of each block, input side first])``.

        Raises:
            ValueError: on an image smaller than :meth:`min_size`.
        """
        if image.dim() != 4 or min(image.shape[-2:]) < self.min_size():
            raise ValueError(
                f"PatchGAN with {self.num_layers} layers needs (B, C, H, W) with H, W >= "
                f"{self.min_size()}, got {tuple(image.shape)}"
            )
        features = []
        x = image
        for layer in self.blocks:
            x = layer(x)
            features.append(x)
        return self.head(x), features

    def forward(self, image: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, 1, H'', W'')`` logits (real: high)."""
        return self.forward_features(image)[0]
