"""The image codec contract: :class:`ImageCodecOutput` and :class:`ImageCodec`.

Every image family is an encoder ``(B, C, H, W) -> (B, D, H', W')``, a quantizer from
:func:`audiotok.quantize.build_quantizer` working channel-last on ``(B, H', W', D)``, and a
decoder back to ``(B, C, H' * f, W' * f)`` where ``f`` is the downsampling factor. This base
class owns everything around those parts: input validation, padding to a multiple of ``f``
and cropping back, the codes layout ``(B, K, H', W')`` (K = 1 for a plain VQ), partial
codebooks for residual quantizers and the tokenizer properties.

Value range: images are float, by convention in ``[-1, 1]`` (what :mod:`audiotok.data.images`
yields); the model checks that they are finite, not their range.

Padding: inputs are padded on the **bottom and right** by repeating the last row/column
(``replicate``; zeros would be mid-grey edges in ``[-1, 1]``) up to ``H' * f`` by ``W' * f``,
so the code grid is aligned to pixel (0, 0); ``forward`` crops the reconstruction back and
``decode(codes, size=(H, W))`` does the same.

Anchors: audiocraft/moshi ``CompressionModel``; this package's audio twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audiotok.quantize.base import Quantizer, check_codes, check_num_codebooks

__all__ = ["ImageCodecOutput", "ImageCodec"]


@dataclass
class ImageCodecOutput:
    """What every image codec's ``forward`` returns.

    Attributes:
        image: ``(B, C, H, W)`` float, the reconstruction, same size as the input.
        codes: ``(B, K, H', W')`` long, ``H' = ceil(H / f)``, ``W' = ceil(W / f)``. In
            training with quantizer dropout, rows of the stages a sample skipped are ``-1``.
        loss: scalar float, the quantizers' auxiliary loss (codebook/commitment terms).
        metrics: detached logging values from the quantizer(s) (``perplexity``, ``usage``...).
    """

    image: Tensor
    codes: Tensor
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class ImageCodec(nn.Module):
    """Base of the image families: validation, padding, codes layout, tokenizer properties.

    Single-quantizer subclasses set ``family``, ``config_class``, and in ``__init__``
    ``config`` (with a ``channels`` field), ``quantizer``, and implement
    :meth:`encode_latent`, :meth:`decode_latent`, :attr:`downsample_factor` and
    :attr:`last_layer`. Hierarchical models (VQ-VAE-2) override the three ``_*_padded`` /
    ``_decode_codes`` hooks instead, and ``num_codebooks`` / ``codebook_size``.
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    modality: ClassVar[str] = "image"
    config: Any
    quantizer: Quantizer

    # -- to implement -------------------------------------------------------------------
    def encode_latent(self, image: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Encoder: ``image (B, C, H' * f, W' * f)`` -> ``latent (B, D, H', W')``."""
        raise NotImplementedError

    def decode_latent(self, quantized: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Decoder: ``quantized (B, D, H', W')`` -> ``image (B, C, H' * f, W' * f)``."""
        raise NotImplementedError

    @property
    def downsample_factor(self) -> int:  # pragma: no cover - abstract
        """f, pixels per code along each side."""
        raise NotImplementedError

    @property
    def last_layer(self) -> Tensor:  # pragma: no cover - abstract
        """The weight of the decoder's last layer (taming's adaptive GAN weight uses it)."""
        raise NotImplementedError

    # -- properties ---------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Image channels C (1 grey, 3 RGB)."""
        return int(self.config.channels)

    @property
    def num_codebooks(self) -> int:
        """K, the number of code rows per latent position."""
        return int(self.quantizer.num_codebooks)

    @property
    def codebook_size(self) -> int:
        """Entries per codebook; codes lie in ``[0, codebook_size)``."""
        return int(self.quantizer.codebook_size)

    @property
    def supports_partial_codebooks(self) -> bool:
        """True when fewer than K codebooks may be used (residual quantizers)."""
        return bool(self.quantizer.supports_partial_codebooks)

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W') = (ceil(H / f), ceil(W / f))``, the code grid of an ``H x W`` image."""
        f = self.downsample_factor
        return -(-int(height) // f), -(-int(width) // f)

    def bits_per_image(self, height: int, width: int) -> float:
        """Bits of the codes of one ``H x W`` image: ``H' * W' * K * log2(codebook_size)``."""
        h, w = self.latent_shape(height, width)
        return h * w * self.num_codebooks * math.log2(self.codebook_size)

    # -- public API ---------------------------------------------------------------------
    def forward(self, image: Tensor, num_codebooks: int | None = None) -> ImageCodecOutput:
        """Encode, quantize and decode.

        Args:
            image: ``(B, C, H, W)`` finite float image, by convention in ``[-1, 1]``.
            num_codebooks: use only the first ``k`` codebooks (residual quantizers); ``None``
                lets the quantizer decide (in training, quantizer dropout may pick fewer).

        Returns:
            :class:`ImageCodecOutput` with ``image (B, C, H, W)``, ``codes (B, K, H', W')``.
        """
        self._check_image(image)
        k = None if num_codebooks is None else self._check_num_codebooks(num_codebooks)
        h, w = image.shape[-2:]
        recon, codes, loss, metrics = self._forward_padded(self._pad(image), k)
        return ImageCodecOutput(recon[..., :h, :w], codes, loss, metrics)

    @torch.no_grad()
    def encode(self, image: Tensor, num_codebooks: int | None = None) -> Tensor:
        """Images to codes.

        Args:
            image: ``(B, C, H, W)`` finite float image with ``C == channels``.
            num_codebooks: keep the first ``k`` codebooks (default: all ``K``).

        Returns:
            ``(B, k, H', W')`` long codes, ``(H', W') = latent_shape(H, W)``.

        Raises:
            ValueError: on a bad shape, dtype, non-finite values or ``k``.
        """
        self._check_image(image)
        k = self.num_codebooks if num_codebooks is None else num_codebooks
        k = self._check_num_codebooks(k)
        return self._encode_padded(self._pad(image), k)[:, :k]

    def decode(self, codes: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Codes to images.

        Args:
            codes: ``(B, k, H', W')`` integer codes, ``1 <= k <= num_codebooks`` (the first
                k codebooks), values in ``[0, codebook_size)``.
            size: ``(H, W)`` of the original image, to crop the padding away (default: the
                full ``(H' * f, W' * f)``).

        Returns:
            ``(B, C, H, W)`` float image.

        Raises:
            ValueError: on a bad shape, dtype, ``k``, size or out-of-range code.
        """
        self._check_codes(codes)
        image = self._decode_codes(codes.long())
        if size is None:
            return image
        h, w = (int(s) for s in size)
        if self.latent_shape(h, w) != tuple(codes.shape[-2:]):
            raise ValueError(
                f"size {(h, w)} does not match the code grid {tuple(codes.shape[-2:])} "
                f"(downsample factor {self.downsample_factor})"
            )
        return image[..., :h, :w]

    # -- hooks (single quantizer) ---------------------------------------------------------
    def _forward_padded(
        self, image: Tensor, k: int | None
    ) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        z = rearrange(self.encode_latent(image), "b d h w -> b h w d")
        q = self.quantizer(z, num_codebooks=k)
        recon = self.decode_latent(rearrange(q.quantized, "b h w d -> b d h w"))
        return recon, self._codes_out(q.codes), q.loss, q.metrics

    def _encode_padded(self, image: Tensor, k: int) -> Tensor:
        z = rearrange(self.encode_latent(image), "b d h w -> b h w d")
        return self._codes_out(self.quantizer.encode(z, num_codebooks=k))

    def _decode_codes(self, codes: Tensor) -> Tensor:
        quantized = self._codes_to_quantized(self.quantizer, codes)
        return self.decode_latent(quantized)

    # -- helpers ------------------------------------------------------------------------
    def _codes_out(self, codes: Tensor, quantizer: Quantizer | None = None) -> Tensor:
        if (quantizer or self.quantizer).codes_have_codebook_dim:
            return rearrange(codes, "b h w k -> b k h w").long()  # (B, K, H', W')
        return codes.long().unsqueeze(1)  # (B, 1, H', W')

    @staticmethod
    def _codes_to_quantized(quantizer: Quantizer, codes: Tensor) -> Tensor:
        """``codes (B, k, H', W')`` -> ``quantized (B, D, H', W')`` through ``quantizer``."""
        if quantizer.codes_have_codebook_dim:
            quantized = quantizer.decode(rearrange(codes, "b k h w -> b h w k"))
        else:
            quantized = quantizer.decode(codes[:, 0])
        return rearrange(quantized, "b h w d -> b d h w")

    def _pad(self, image: Tensor) -> Tensor:
        h, w = image.shape[-2:]
        hp, wp = self.latent_shape(h, w)
        f = self.downsample_factor
        extra_h, extra_w = hp * f - h, wp * f - w
        if not (extra_h or extra_w):
            return image
        return F.pad(image, (0, extra_w, 0, extra_h), mode="replicate")

    def _check_num_codebooks(self, k: Any) -> int:
        # the model's K and partial rule, which a hierarchical model (VQ-VAE-2) overrides
        return check_num_codebooks(
            k,
            total=self.num_codebooks,
            partial=self.supports_partial_codebooks,
            owner=type(self).__name__,
        )

    def _check_image(self, image: Tensor) -> None:
        if not isinstance(image, Tensor):
            raise ValueError(f"expected a torch.Tensor (B, C, H, W), got {type(image).__name__}")
        if not image.is_floating_point():
            raise ValueError(f"expected a float image, got dtype {image.dtype}")
        if image.dim() != 4 or image.shape[1] != self.channels or min(image.shape[-2:]) < 1:
            raise ValueError(
                f"expected an image of shape (B, {self.channels}, H, W) with H, W >= 1, "
                f"got {tuple(image.shape)}"
            )
        if not torch.isfinite(image).all():
            raise ValueError("image contains NaN or inf values")

    def _check_codes(self, codes: Tensor) -> None:
        """``codes (B, k, H', W')`` integer, k a count :meth:`_check_num_codebooks` takes, in
        range."""
        check_codes(
            codes,
            layout=("B", "k", "H'", "W'"),
            codebook_size=self.codebook_size,
            num_codebooks=self._check_num_codebooks,
        )
