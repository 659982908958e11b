"""Image sources: random access to decoded images, ``load(i) -> (H, W, C) uint8``.

:class:`ImageSource` is the contract every reader of :mod:`audiotok.data.image_readers`
returns (``len``, ``load``, stable ``keys`` for splitting, optional integer ``labels`` and
``classes``); :class:`FileImages` decodes files with Pillow (grey modes, 16-bit ones
rescaled, to one channel; everything else to RGB) and :class:`ArrayImages` serves one
in-memory array. Bad files are reported with one ``RuntimeWarning`` each and a count, and
skipped; a source with nothing left raises :class:`~audiotok.errors.UserError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audiotok.data.image_formats import short_error
from audiotok.errors import UserError

__all__ = ["IMAGE_EXTENSIONS", "ImageSource", "FileImages", "ArrayImages"]

#: Image file extensions, matched case-insensitively.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_PathLike = str | os.PathLike


class ImageSource:
    """Random access to images: ``load(i) -> (H, W, C) uint8`` with ``C`` 1 or 3.

    Attributes:
        keys: one stable string per image (a relative path or ``name:index``) for splits.
        labels: integer labels, or ``None``.
        classes: class names for the labels where known (folders), else ``None``.
        name: the source in messages.
    """

    keys: list[str]
    labels: list[int] | None
    classes: list[str] | None = None
    name: str = "images"

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        """Image ``index`` as ``(H, W, C)`` uint8."""
        raise NotImplementedError

    @property
    def channels(self) -> int:  # pragma: no cover - abstract
        """C of the images (3 if any is colour)."""
        raise NotImplementedError


def warn_skipped(
    name: str, bad: Sequence[tuple[str, str]], total: int, noun: str = "images"
) -> None:
    """Warn once per skipped ``(path, why)`` and once with the count (at the reader's
    caller); raise :class:`UserError` when all ``total`` were bad."""
    for path, why in bad:
        warnings.warn(f"{path}: skipped ({why})", RuntimeWarning, stacklevel=3)
    if bad:
        warnings.warn(
            f"{name}: {len(bad)} of {total} {noun} skipped, {total - len(bad)} kept",
            RuntimeWarning,
            stacklevel=3,
        )
    if len(bad) == total:
        raise UserError(f"no readable {noun} in {name}")


#: Pillow modes read as one grey channel (16-bit and 32-bit integer ones rescaled to 8 bits).
_GREY_MODES = ("1", "L", "LA", "F", "I", "I;16", "I;16B", "I;16L")


def _pil_to_array(img: Any) -> np.ndarray:
    """A Pillow image as ``(H, W, 1)`` or ``(H, W, 3)`` uint8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "I" else max(float(a.max()), 1.0)
        return np.round(np.clip(a / top, 0, 1) * 255).astype(np.uint8)[..., None]
    if img.mode in ("1", "L", "LA", "F"):
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _key(path: Path, root: Path | None) -> str:
    # relative to the root where possible, so that moving a whole folder keeps the splits
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.as_posix()


class FileImages(ImageSource):
    """Images in files, decoded with Pillow.

    Args:
        paths: image files.
        labels: one int per path, or ``None``.
        root: paths are keyed relative to it (stable splits when the folder moves).
        classes: names of the labels, if any.
        name: the source in messages.
        check: ``"decode"`` decodes each file once now (catches truncated files),
            ``"header"`` only reads headers (fast, for large folders).

    Raises:
        UserError: when no file is readable.
    """

    def __init__(
        self,
        paths: Sequence[_PathLike],
        labels: Sequence[int] | None = None,
        *,
        root: _PathLike | None = None,
        classes: Sequence[str] | None = None,
        name: str = "image files",
        check: str = "decode",
    ) -> None:
        from PIL import Image

        if check not in ("decode", "header"):
            raise ValueError(f"check must be 'decode' or 'header', got {check!r}")
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.name = name
        self.classes = list(classes) if classes is not None else None
        good: list[int] = []
        bad: list[tuple[str, str]] = []
        self._colour = False
        for i, p in enumerate(paths):
            try:
                with Image.open(p) as img:
                    (img.load if check == "decode" else img.verify)()
                    self._colour |= img.mode not in _GREY_MODES
            except Exception as e:  # Pillow raises many types for bad files
                bad.append((str(p), short_error(e) or "not a readable image"))
                continue
            good.append(i)
        warn_skipped(name, bad, len(paths))
        self.paths = [Path(paths[i]) for i in good]
        base = Path(root) if root is not None else None
        self.keys = [_key(p, base) for p in self.paths]
        self.labels = [int(labels[i]) for i in good] if labels is not None else None

    @property
    def channels(self) -> int:
        """3 if any file is colour, else 1."""
        return 3 if self._colour else 1

    def load(self, index: int) -> np.ndarray:
        """Decode file ``index`` to ``(H, W, C)`` uint8 (C = :attr:`channels`).

        Raises:
            UserError: the file became unreadable since the check.
        """
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as img:
                a = _pil_to_array(img)
        except Exception as e:
            raise UserError(f"cannot read image {self.paths[index]}: {short_error(e)}") from None
        return np.repeat(a, 3, axis=2) if self.channels == 3 and a.shape[2] == 1 else a


class ArrayImages(ImageSource):
    """Images held in one array ``(N, H, W, C)`` (any integer/float/bool dtype).

    Args:
        images: ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` with C in {1, 3, 4}
            (alpha dropped); uint8 as is, other integers must lie in [0, 255], floats in
            [0, 1], bools map to {0, 255}.
        labels: ``(N,)`` integers or ``None``.
        name: the source in messages (keys are ``name:index``).

    Raises:
        UserError: on an unusable shape, range or label count.
    """

    def __init__(self, images: np.ndarray, labels: Any = None, *, name: str = "array") -> None:
        self.name = name
        a = np.asarray(images)
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise UserError(f"{name}: expected images (N, H, W[, C]), got shape {a.shape}")
        if a.shape[-1] not in (1, 3, 4) and a.shape[1] in (1, 3, 4):
            a = a.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        if a.shape[-1] not in (1, 3, 4):
            raise UserError(f"{name}: expected 1, 3 or 4 channels, got shape {a.shape}")
        a = a[..., :3] if a.shape[-1] == 4 else a
        if (
            a.dtype.kind == "f"
            and a.size
            and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1)
        ):
            raise UserError(f"{name}: float images must be finite and in [0, 1]")
        if (
            a.dtype.kind in "iu"
            and a.dtype != np.uint8
            and a.size
            and (a.min() < 0 or a.max() > 255)
        ):
            raise UserError(f"{name}: integer images must lie in [0, 255]")
        if a.dtype.kind not in "fiub":
            raise UserError(f"{name}: unsupported image dtype {a.dtype}")
        self.images = a
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != (len(a),) or lab.dtype.kind not in "iu":
                raise UserError(
                    f"{name}: expected {len(a)} integer labels, got {lab.dtype} {lab.shape}"
                )
            self.labels = [int(v) for v in lab]
        else:
            self.labels = None
        self.keys = [f"{name}:{i}" for i in range(len(a))]

    @property
    def channels(self) -> int:
        """C of the array."""
        return int(self.images.shape[-1])

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as ``(H, W, C)`` uint8."""
        x = self.images[index]
        if x.dtype == np.uint8:
            return np.ascontiguousarray(x)
        if x.dtype.kind == "f":
            return np.round(x.astype(np.float64) * 255).astype(np.uint8)
        if x.dtype.kind == "b":
            return x.astype(np.uint8) * 255
        return x.astype(np.uint8)
