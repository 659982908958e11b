"""Image files in and out for the tokenizer, batch and eval: decode, channel rules, atomic PNG.

The image twin of :mod:`audiotok.audio_io`, below the tokenizer, batch and eval layers:

- :func:`read_image` decodes one file with Pillow (PNG, JPEG, WebP, BMP, ... whatever Pillow
  opens) into ``(H, W, C)`` uint8 with ``C`` 1 or 3, and turns every way a file can be bad
  (missing, empty, truncated, not an image, an unsupported mode, too large) into one
  :class:`~audiotok.errors.UserError` line ``"<file>: <problem>"``. Modes: 1/L/LA/P/PA/RGB/
  RGBA/RGBX/CMYK/YCbCr as 8-bit, I;16 (/65535) and I (/max) and F (clipped) as grey;
  alpha is dropped (not composited). Anything else (LAB, HSV, multi-band TIFF) is refused.
- :func:`to_channels`: grey -> colour by repetition, colour -> grey by ITU-R 601 luma,
  rounded (the rule of :class:`audiotok.data.ImageDataset`, which the models trained on).
- :func:`write_image`: an atomic, never-overwriting (unless ``force``) PNG (or any Pillow
  format by extension) carrying a ``Software: audiotok <version>`` text chunk, so that
  :func:`written_by_audiotok` tells a decode output from a user's picture (decode then never
  names a user's picture as its output).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from audiotok.atomic import check_destination, commit, create_temp, describe_os_error
from audiotok.errors import UserError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOFTWARE_TAG",
    "MAX_PIXELS",
    "read_image",
    "to_channels",
    "write_image",
    "written_by_audiotok",
]

#: Image file extensions searched in folders, matched case-insensitively.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
#: The ``Software`` text chunk of the PNGs audiotok writes starts with this and a space.
SOFTWARE_TAG = "audiotok"
#: Most pixels of an image read (a bigger one is refused before it is decoded).
MAX_PIXELS = 1 << 26
_EIGHT_BIT = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La"}
_GREY = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return msg or type(e).__name__


def _to_array(img: Any, where: str) -> np.ndarray:
    """A loaded Pillow image as ``(H, W, 1)`` or ``(H, W, 3)`` uint8."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "I" else max(float(a.max()), 1.0)
        return np.round(np.clip(a / top, 0, 1) * 255).astype(np.uint8)[..., None]
    if mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        return np.round(np.clip(a, 0, 255)).astype(np.uint8)[..., None]
    if mode not in _EIGHT_BIT:
        raise UserError(f"{where}: unsupported image mode {mode!r}")
    if mode in _GREY or (mode in ("P", "PA") and _palette_is_grey(img)):
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _palette_is_grey(img: Any) -> bool:
    try:
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception:
        return False
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to ``(H, W, C)`` uint8, ``C`` 1 (grey) or 3 (colour).

    Raises:
        UserError: ``"<file>: <problem>"`` for a missing, empty, truncated, non-image,
            unsupported-mode or oversized (more than :data:`MAX_PIXELS`) file.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: file not found")
    if not p.is_file():
        raise UserError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise UserError(f"{p}: file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():  # our own limit below says it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise UserError(f"{p}: {w}x{h} image; at most {MAX_PIXELS:,} pixels")
            if w < 1 or h < 1:
                raise UserError(f"{p}: empty image ({w}x{h})")
            img.load()
            return _to_array(img, str(p))
    except UserError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit, checked inside open()
        raise UserError(f"{p}: image too large; at most {MAX_PIXELS:,} pixels") from None
    except UnidentifiedImageError:
        raise UserError(f"{p}: not an image (or a format Pillow cannot read)") from None
    except OSError as e:
        if e.errno is not None:
            raise UserError(f"{p}: cannot read ({describe_os_error(e)})") from None
        raise UserError(f"{p}: corrupt or truncated image ({_short(e)})") from None
    except Exception as e:  # Pillow raises many types for bad files (SyntaxError, ValueError)
        raise UserError(f"{p}: corrupt image ({_short(e)})") from None


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``(H, W, C)`` uint8 with ``C`` in {1, 3} -> ``(H, W, channels)`` uint8.

    Grey -> colour repeats the channel; colour -> grey is ITU-R 601 luma
    (``0.299 R + 0.587 G + 0.114 B``, rounded), as :class:`audiotok.data.ImageDataset` does.

    Raises:
        UserError: ``channels`` or ``C`` not 1 or 3.
    """
    c = pixels.shape[-1]
    if channels not in (1, 3) or c not in (1, 3):
        raise UserError(f"cannot convert {c} channel(s) to {channels}; 1 and 3 are supported")
    if c == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    luma = np.round(pixels.astype(np.float64) @ [0.299, 0.587, 0.114])
    return luma.astype(np.uint8)[..., None]


def write_image(
    pixels: np.ndarray, path: str | os.PathLike, *, force: bool = False, tag: bool = True
) -> Path:
    """Write ``(H, W, C)`` uint8 (C 1 or 3) atomically; the format follows the extension.

    Args:
        pixels: the image.
        path: destination (``.png`` usually); its folder is created.
        force: replace an existing file (else it is never overwritten, also under races).
        tag: mark the file as written by audiotok (PNG ``Software`` chunk), so that a later
            decode may replace it.

    Returns:
        The path written.

    Raises:
        UserError: an existing file without ``force``, an unknown extension, a write error.
    """
    from PIL import Image, PngImagePlugin

    from audiotok import __version__

    p = Path(path)
    a = np.ascontiguousarray(pixels)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise UserError(f"{p}: expected pixels (H, W, 1 or 3) uint8, got {a.dtype} {a.shape}")
    img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a, "L" if a.shape[-1] == 1 else "RGB")
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise UserError(f"{p}: unknown image extension {p.suffix!r} (use .png)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{p.parent}: cannot create folder ({describe_os_error(e)})") from None
    check_destination(p, force)
    fd, tmp = create_temp(p)
    try:
        with os.fdopen(fd, "wb") as f:
            extra: dict[str, Any] = {}
            if fmt == "PNG" and tag:
                info = PngImagePlugin.PngInfo()
                info.add_text("Software", f"{SOFTWARE_TAG} {__version__}")
                extra["pnginfo"] = info
            img.save(f, format=fmt, **extra)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{p}: cannot write ({describe_os_error(e)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return commit(tmp, p, force=force)


def written_by_audiotok(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG that :func:`write_image` wrote (its ``Software`` chunk),
    i.e. a decode output rather than a user's picture."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return str(img.info.get("Software", "")).startswith(SOFTWARE_TAG + " ")
    except Exception:
        return False
