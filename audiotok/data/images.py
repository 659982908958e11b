"""Image data, one import path: sources, readers and the dataset.

The pieces live in four modules, one job each, and are re-exported here so that
``from audiotok.data.images import ...`` keeps working for every name below:

- :mod:`audiotok.data.image_sources`: the :class:`ImageSource` contract (``len``,
  ``load(i) -> (H, W, C) uint8``, stable ``keys``, optional ``labels`` / ``classes``),
  :class:`FileImages` (Pillow) and :class:`ArrayImages` (one array).
- :mod:`audiotok.data.image_readers`: :func:`image_folder`, :func:`image_list`,
  :func:`image_manifest`, :func:`idx_images`, :func:`cifar_images`, :func:`array_images`
  and :func:`open_image_source`, which picks one from a path.
- :mod:`audiotok.data.image_formats`: MNIST IDX and CIFAR batches parsed without trusting
  them (:func:`read_idx`, :func:`read_cifar_binary`, :func:`read_cifar_pickle` through
  :func:`restricted_unpickle`).
- :mod:`audiotok.data.image_dataset`: :class:`ImageDataset`, float ``(C, H, W)`` in
  ``[-1, 1]`` with a label (``-1`` where the source has none), split by key with
  :func:`split_of`.
"""

from __future__ import annotations

from audiotok.data.image_dataset import ImageDataset, split_of
from audiotok.data.image_formats import (
    read_cifar_binary,
    read_cifar_pickle,
    read_idx,
    restricted_unpickle,
)
from audiotok.data.image_readers import (
    array_images,
    cifar_images,
    find_images,
    idx_images,
    image_folder,
    image_list,
    image_manifest,
    open_image_source,
)
from audiotok.data.image_sources import IMAGE_EXTENSIONS, ArrayImages, FileImages, ImageSource

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "FileImages",
    "ArrayImages",
    "ImageDataset",
    "find_images",
    "image_folder",
    "image_list",
    "image_manifest",
    "read_idx",
    "idx_images",
    "read_cifar_binary",
    "read_cifar_pickle",
    "restricted_unpickle",
    "cifar_images",
    "array_images",
    "open_image_source",
    "split_of",
]
