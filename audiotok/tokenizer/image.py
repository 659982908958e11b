""":class:`ImageTokenizer`, the user-facing image codec API around an ``ImageCodec``.

``ImageTokenizer`` wraps any :class:`~audiotok.image.base.ImageCodec` (``image_vqvae``,
``image_vqvae2``) and satisfies :class:`~audiotok.tokenizer.protocol.ImageTokenizerProtocol`:

- ``encode(images (B, C, H, W) float) -> codes (B, K, H', W') long``, ``(H', W') =
  latent_shape(H, W) = (ceil(H / f), ceil(W / f))``;
- ``decode(codes (B, K, H', W'), size=(H, W)) -> images (B, C, H, W) float``.

**Value range.** Images are float in the model's range, ``[-1, 1]`` (``uint8 / 127.5 - 1``,
what :mod:`audiotok.data` yields and the models were trained on); :func:`pixels_to_images` and
:func:`images_to_pixels` convert from and to ``uint8`` arrays ``(H, W, C)``. Decoded images are
*not* clamped (that is the model's raw output, the same as its ``forward``); clamp before
showing them (``images_to_pixels`` does).

**Sizes that are not a multiple of f.** The model pads the image on the bottom and right by
repeating the last row/column up to ``H' * f`` by ``W' * f`` (zeros would be mid-grey edges
in ``[-1, 1]``), so the code grid is aligned to pixel (0, 0). Codes do not record ``(H, W)``:
``decode(codes)`` returns the full ``(H' * f, W' * f)``, ``decode(codes, size=(H, W))`` crops
the padding away (token files record the size, and ``audiotok decode`` uses it).

**VQ-VAE-2** (two levels): codes are one ``(B, K, H', W')`` tensor on the *top* grid, the
model's **packed** layout: rows ``[0, Kt)`` are the top codes and the next ``r * r * Kb`` rows
the bottom codes folded space-to-depth (``r = ft / fb``); see :mod:`audiotok.image.vqvae2`.
Everything that handles ``(B, K, H', W')`` (token files, shards, priors over flattened codes)
works unchanged, and nothing is redundant. :meth:`ImageTokenizer.encode_levels` /
:meth:`ImageTokenizer.decode_levels` give and take ``(top, bottom)`` at their own grids, what
the paper's two priors need; :attr:`ImageTokenizer.levels` says how the rows split.

Errors: bad input raises :class:`~audiotok.errors.UserError` with one line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from audiotok import __version__
from audiotok.codes import ImageCodesMeta
from audiotok.errors import UserError
from audiotok.tokenizer.base import ModelTokenizer

__all__ = ["ImageTokenizer", "pixels_to_images", "images_to_pixels"]


def pixels_to_images(pixels: Any) -> Tensor:
    """``uint8`` pixels ``(H, W, C)`` or ``(B, H, W, C)`` -> float ``(B, C, H, W)`` in
    ``[-1, 1]`` (``x / 127.5 - 1``, the models' range)."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        raise UserError(f"expected uint8 pixels, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise UserError(f"expected pixels (H, W, C) or (B, H, W, C), got shape {a.shape}")
    x = torch.from_numpy(np.array(a.transpose(0, 3, 1, 2)))  # a copy: PIL arrays are read-only
    return x.float() / 127.5 - 1.0


def images_to_pixels(images: Tensor) -> np.ndarray:
    """Float ``(B, C, H, W)`` in ``[-1, 1]`` -> ``uint8`` ``(B, H, W, C)`` (clamped, rounded)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


class ImageTokenizer(ModelTokenizer):
    """Tokenize images with an :class:`~audiotok.image.base.ImageCodec`.

    Args:
        model: the codec; put in eval mode.
        model_id: the id written into token files (default: a hash of config and weights).
        batch_size: images per forward pass (bounds memory; does not change the codes).
    """

    modality: ClassVar[str] = "image"

    def __init__(self, model: nn.Module, *, model_id: str | None = None, batch_size: int = 64):
        if getattr(model, "modality", None) != "image":
            raise UserError(f"{type(model).__name__} is not an image model")
        self.model = model.eval()
        self._model_id = model_id
        self.batch_size = max(1, int(batch_size))

    # -- properties ---------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Image channels C of the model (1 grey, 3 RGB)."""
        return int(self.model.channels)

    @property
    def downsample_factor(self) -> int:
        """f, pixels per code along each side (the top grid's for VQ-VAE-2)."""
        return int(self.model.downsample_factor)

    @property
    def num_codebooks(self) -> int:
        """K, code rows per latent position (packed rows for VQ-VAE-2)."""
        return int(self.model.num_codebooks)

    @property
    def codebook_size(self) -> int:
        """V, entries per codebook; codes lie in ``[0, V)``."""
        return int(self.model.codebook_size)

    @property
    def supports_partial_codebooks(self) -> bool:
        """True when the first ``k < K`` codebooks decode too (residual quantizers)."""
        return bool(self.model.supports_partial_codebooks)

    @property
    def levels(self) -> dict[str, dict[str, int]] | None:
        """VQ-VAE-2: ``{"top": {"rows", "downsample_factor"}, "bottom": {...}}`` (the bottom's
        rows in the packed codes are ``r * r * Kb``); ``None`` for single-level models."""
        m = self.model
        if not hasattr(m, "top_num_codebooks"):
            return None
        return {
            "top": {
                "rows": int(m.top_num_codebooks),
                "downsample_factor": int(m.downsample_factor),
            },
            "bottom": {
                "rows": int(m.ratio**2 * m.bottom_num_codebooks),
                "num_codebooks": int(m.bottom_num_codebooks),
                "downsample_factor": int(m.bottom_downsample_factor),
            },
        }

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W') = (ceil(H / f), ceil(W / f))``, the code grid of an ``H x W`` image."""
        f = self.downsample_factor
        return -(-int(height) // f), -(-int(width) // f)

    def bits_per_image(self, height: int, width: int) -> float:
        """Bits of the raw codes of one ``H x W`` image, ``H' * W' * K * log2(V)``."""
        h, w = self.latent_shape(height, width)
        return h * w * self.num_codebooks * math.log2(self.codebook_size)

    def codes_meta(
        self, num_codebooks: int, height: int, width: int, original_channels: int | None = None
    ) -> ImageCodesMeta:
        """Token-file metadata for the codes of one ``height x width`` image."""
        return ImageCodesMeta(
            model_id=self.model_id,
            family=self.family,
            audiotok_version=__version__,
            channels=self.channels,
            downsample_factor=self.downsample_factor,
            num_codebooks=int(num_codebooks),
            codebook_size=self.codebook_size,
            height=int(height),
            width=int(width),
            original_channels=int(original_channels or self.channels),
        )

    # -- encoding -----------------------------------------------------------------------
    def _as_images(self, images: Any) -> Tensor:
        x = torch.from_numpy(np.array(images)) if isinstance(images, np.ndarray) else images
        if not isinstance(x, Tensor):
            raise UserError(f"expected images (B, C, H, W), got {type(images).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if not x.is_floating_point():
            raise UserError(
                f"expected float images in [-1, 1], got dtype {x.dtype} "
                "(uint8 pixels: use pixels_to_images)"
            )
        if x.dim() != 4 or x.shape[1] != self.channels or min(x.shape[-2:]) < 1:
            raise UserError(
                f"expected images (B, {self.channels}, H, W) with H, W >= 1, got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise UserError("images contain NaN or inf values")
        return x

    def encode(self, images: Any, *, num_codebooks: int | None = None) -> Tensor:
        """Images to codes.

        Args:
            images: float tensor or array ``(B, C, H, W)`` (or ``(C, H, W)``) in ``[-1, 1]``,
                any ``H, W >= 1`` (padded to a multiple of f, see the module doc).
            num_codebooks: keep the first ``k`` codebooks (residual quantizers only).

        Returns:
            ``(B, k, H', W')`` long codes on the CPU, ``(H', W') = latent_shape(H, W)``.

        Raises:
            UserError: bad shape, dtype, channel count, ``k`` or non-finite values.
        """
        x = self._as_images(images)
        out = []
        try:
            for part in x.split(self.batch_size):
                out.append(self.model.encode(part.to(self.device), num_codebooks).cpu())
        except ValueError as e:
            raise UserError(str(e)) from None
        return torch.cat(out)

    # -- decoding -----------------------------------------------------------------------
    def _as_codes(self, codes: Any) -> Tensor:
        c = torch.from_numpy(np.array(codes)) if isinstance(codes, np.ndarray) else codes
        if not isinstance(c, Tensor):
            raise UserError(f"expected codes (B, K, H', W'), got {type(codes).__name__}")
        if c.dim() == 3:
            c = c.unsqueeze(0)
        if not c.is_floating_point() and not c.is_complex() and c.dtype != torch.bool:
            c = c.long()  # numpy's uint8/uint16 token files; values are checked by the model
        return c

    def decode(self, codes: Any, *, size: tuple[int, int] | None = None) -> Tensor:
        """Codes to images.

        Args:
            codes: integer tensor or array ``(B, k, H', W')`` (or ``(k, H', W')``), values in
                ``[0, codebook_size)``; ``k <= K`` for residual quantizers, else ``k = K``.
            size: ``(H, W)`` of the original images, to crop the padding away; it must give
                the same code grid (``latent_shape(H, W) == (H', W')``). Default: the full
                ``(H' * f, W' * f)``.

        Returns:
            ``(B, C, H, W)`` float32 on the CPU, in the model's range (not clamped).

        Raises:
            UserError: bad shape, dtype, codebook count, out-of-range code or size.
        """
        c = self._as_codes(codes)
        out = []
        try:
            if c.dim() != 4:
                raise ValueError(f"expected codes (B, K, H', W'), got shape {tuple(c.shape)}")
            with torch.no_grad():
                for part in c.split(self.batch_size):
                    out.append(self.model.decode(part.to(self.device), size=size).float().cpu())
        except ValueError as e:
            raise UserError(str(e)) from None
        return torch.cat(out)

    # -- VQ-VAE-2 levels ----------------------------------------------------------------
    def _hierarchical(self) -> Any:
        if self.levels is None:
            raise UserError(f"{self.family} has one level; use encode/decode")
        return self.model

    def encode_levels(self, images: Any) -> tuple[Tensor, Tensor]:
        """VQ-VAE-2: ``(top (B, Kt, H/ft, W/ft), bottom (B, Kb, H/fb, W/fb))`` long codes.

        Raises:
            UserError: a single-level model, or bad images (see :meth:`encode`).
        """
        model = self._hierarchical()
        top, bottom = model.unpack_codes(self.encode(images).to(self.device))
        return top.cpu(), bottom.cpu()

    def decode_levels(
        self, top: Any, bottom: Any, *, size: tuple[int, int] | None = None
    ) -> Tensor:
        """VQ-VAE-2: both levels' codes -> ``(B, C, H, W)``; ``size`` as in :meth:`decode`.

        Raises:
            UserError: a single-level model, or codes that do not fit each other.
        """
        model = self._hierarchical()
        try:
            packed = model.pack_codes(self._as_codes(top), self._as_codes(bottom))
        except ValueError as e:
            raise UserError(str(e)) from None
        return self.decode(packed, size=size)

    # -- files ----------------------------------------------------------------------------
    def encode_file(
        self, path: str | os.PathLike, *, num_codebooks: int | None = None
    ) -> tuple[Tensor, ImageCodesMeta]:
        """Encode one image file (PNG, JPEG, WebP, BMP, ...).

        Colour images are converted to grey for a grey model (ITU-R 601 luma, as the
        training data) and grey to colour by repetition; alpha is dropped.

        Returns:
            ``(codes (k, H', W') long, meta)``, ready for :func:`audiotok.codes.write_codes`.

        Raises:
            UserError: a missing, truncated, non-image or unsupported file.
        """
        from audiotok.image_io import read_image, to_channels

        pixels = read_image(path)  # (H, W, C) uint8
        h, w, c = pixels.shape
        images = pixels_to_images(to_channels(pixels, self.channels))
        codes = self.encode(images, num_codebooks=num_codebooks)  # (1, k, H', W')
        return codes[0], self.codes_meta(codes.shape[1], h, w, c)

    def decode_to_file(
        self,
        codes: Any,
        path: str | os.PathLike,
        *,
        size: tuple[int, int] | None = None,
        channels: int | None = None,
        force: bool = False,
    ) -> Path:
        """Decode one image's codes ``(k, H', W')`` to a PNG (atomically).

        Args:
            codes: ``(k, H', W')`` or ``(1, k, H', W')``.
            path: the output file (``.png``; other Pillow formats by extension).
            size: ``(H, W)`` to crop to (default: the full code grid).
            channels: 1 or 3 output channels (default: the model's).
            force: replace an existing file.

        Returns:
            The path written.

        Raises:
            UserError: bad codes or size, an image over ``image_io.MAX_PIXELS`` pixels, an
                existing ``path`` without ``force``, a path that cannot be written.
        """
        from audiotok.image_io import MAX_PIXELS, to_channels, write_image

        c = self._as_codes(codes)
        f = self.downsample_factor
        if c.dim() == 4 and c.shape[-2] * c.shape[-1] * f * f > MAX_PIXELS:  # before decoding
            raise UserError(
                f"{path}: a {c.shape[-2]}x{c.shape[-1]} code grid decodes to more than "
                f"{MAX_PIXELS:,} pixels"
            )
        if c.dim() == 4 and c.shape[0] != 1:
            raise UserError(f"decode_to_file takes one image, got a batch of {c.shape[0]}")
        images = self.decode(c, size=size)
        pixels = to_channels(images_to_pixels(images)[0], channels or self.channels)
        return write_image(pixels, path, force=force)
