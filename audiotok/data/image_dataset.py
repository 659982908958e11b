"""The image dataset: any image source as float tensors ``(C, H, W)`` in ``[-1, 1]``.

:class:`ImageDataset` converts channels (ITU-R 601 luma for grey), resizes and crops (centre
for evaluation, random at the native scale for training on crops of large images), flips,
and splits deterministically by source key with :func:`split_of`, so adding or removing
files never moves an image between the train and val splits. ``x / 127.5 - 1`` is the range
the image codecs (:mod:`audiotok.image`) expect.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.data.image_readers import open_image_source
from audiotok.data.image_sources import ImageSource
from audiotok.errors import UserError

__all__ = ["ImageDataset", "split_of"]

_PathLike = str | os.PathLike


def split_of(key: str, val_fraction: float, seed: int = 0) -> str:
    """``"val"`` or ``"train"`` for one key, from a hash of ``seed`` and the key alone, so
    adding or removing other files never moves an image between splits."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2.0**64 < val_fraction else "train"


class ImageDataset(Dataset):
    """Images as float tensors ``(C, H, W)`` in ``[-1, 1]``, with an integer label.

    Args:
        source: an :class:`ImageSource` or a path for :func:`open_image_source`.
        channels: 1 (grey, ITU-R 601 luma) or 3; ``None`` keeps the source's.
        size: ``(H, W)`` or one int; ``None`` keeps each image's size (batches then need
            equal sizes).
        crop: how ``size`` is reached: ``"center"`` resizes (bicubic) so the image just
            covers it, then crops the centre; ``"random"`` crops at a random place at the
            native scale (images smaller than ``size`` are first resized to cover it), for
            training on crops of large images.
        flip: mirror left-right with probability 1/2 (training augmentation).
        split: ``"train"``, ``"val"`` or ``"all"``; by :func:`split_of` on the source keys.
        val_fraction: share of keys in ``"val"``.
        seed: changes which keys are held out.

    ``dataset[i]`` is ``(image, label)``: ``image (C, H, W)`` float32 ``= uint8 / 127.5 - 1``
    and ``label`` an int, ``-1`` when the source has no labels. Random crops and flips draw
    from torch's global generator (seeded per worker by ``DataLoader``).

    Raises:
        UserError: when the split is empty.
    """

    def __init__(
        self,
        source: ImageSource | _PathLike,
        *,
        channels: int | None = None,
        size: int | tuple[int, int] | None = None,
        crop: str = "center",
        flip: bool = False,
        split: str = "all",
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        if not 0.0 <= val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
        if crop not in ("center", "random"):
            raise ValueError(f"crop must be 'center' or 'random', got {crop!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
        self.source = source if isinstance(source, ImageSource) else open_image_source(source)
        self.channels = int(channels or self.source.channels)
        self.size = (size, size) if isinstance(size, int) else size
        self.crop, self.flip = crop, bool(flip)
        keys = self.source.keys
        self.indices = [
            i
            for i, k in enumerate(keys)
            if split == "all" or split_of(k, val_fraction, seed) == split
        ]
        if not self.indices:
            raise UserError(f"{self.source.name}: the {split!r} split is empty")

    @property
    def has_labels(self) -> bool:
        """True when the source has labels (else every label is -1)."""
        return self.source.labels is not None

    @property
    def classes(self) -> list[str] | None:
        """Class names of the labels, where the source knows them."""
        return self.source.classes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        i = self.indices[index]
        a = self.source.load(i)  # (H, W, C) uint8
        if a.shape[2] != self.channels:
            if self.channels == 1:
                a = np.round(a.astype(np.float64) @ [0.299, 0.587, 0.114])[..., None]
                a = a.astype(np.uint8)
            else:
                a = np.repeat(a, 3, axis=2)
        if self.size is not None and a.shape[:2] != tuple(self.size):
            a = _resize_crop(a, self.size, random=self.crop == "random")
        if self.flip and bool(torch.rand(()) < 0.5):
            a = a[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 127.5 - 1.0
        labels = self.source.labels
        return x, (labels[i] if labels is not None else -1)


def _resize_crop(a: np.ndarray, size: tuple[int, int], *, random: bool) -> np.ndarray:
    from PIL import Image

    h, w = a.shape[:2]
    th, tw = size
    out = a[..., 0] if a.shape[2] == 1 else a
    if not random or h < th or w < tw:
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        out = np.asarray(Image.fromarray(out).resize((nw, nh), Image.Resampling.BICUBIC))
    nh, nw = out.shape[:2]
    if random:
        top, left = (int(torch.randint(0, n - t + 1, ())) for n, t in ((nh, th), (nw, tw)))
    else:
        top, left = (nh - th) // 2, (nw - tw) // 2
    out = out[top : top + th, left : left + tw]
    return out[..., None] if out.ndim == 2 else out
