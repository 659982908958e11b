"""Image data: folders, lists, manifests, MNIST IDX, CIFAR batches, NumPy arrays.

Every reader gives an :class:`ImageSource` (``len``, ``load(i) -> (H, W, C) uint8``, stable
``keys`` for splitting, optional integer ``labels``) and :class:`ImageDataset` turns one into
float tensors ``(C, H, W)`` in **[-1, 1]** (``x / 127.5 - 1``: the range the image codecs
expect) with a label (``-1`` where the source has none), split deterministically by key.

Readers:

- :func:`image_folder`: png/jpg/jpeg/webp/bmp in any case, recursive, flat or with class
  subfolders (labels are the sorted subfolder names); decoded with Pillow.
- :func:`image_list` (text, ``path`` or ``path<TAB>label`` per line) and
  :func:`image_manifest` (JSONL, ``{"path": ..., "label": ...}``); relative paths are
  relative to the list's folder.
- :func:`read_idx` / :func:`idx_images`: MNIST-style ``*-ubyte`` and ``*-ubyte.gz``; the
  header's dimensions are checked against the file size (for gzip, against the size in its
  trailer) before anything is allocated.
- :func:`read_cifar_binary` / :func:`read_cifar_pickle` / :func:`cifar_images`: CIFAR-10/100
  binary batches (``data_batch_*.bin``) and python batches, the latter through a restricted
  unpickler that resolves only NumPy's array reconstruction (no other global, so a pickle
  cannot run code).
- :func:`array_images`: ``.npy`` / ``.npz`` read with ``allow_pickle=False``.

Bad files (unreadable, truncated, not an image) are reported with one ``RuntimeWarning`` each
and a count, and skipped; a source with nothing left raises
:class:`~audiotok.errors.UserError`. :func:`open_image_source` picks the reader from a path.

Over 400 lines for now: the folder/list/manifest/array readers share the ImageSource
classes and the dataset, and were split once (IDX and CIFAR went to image_formats.py); the
next split moves :class:`ImageDataset` into its own module.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.data.image_formats import (
    is_cifar_batch,
    read_cifar_binary,
    read_cifar_pickle,
    read_idx,
    restricted_unpickle,
    short_error,
)
from audiotok.errors import UserError

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


def _warn_skipped(
    name: str, bad: Sequence[tuple[str, str]], total: int, noun: str = "images"
) -> None:
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
        _warn_skipped(name, bad, len(paths))
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


# -- folders, lists, manifests ---------------------------------------------------------
def find_images(root: _PathLike) -> list[Path]:
    """Image files under ``root``, recursively, sorted; hidden files and folders skipped.

    Raises:
        UserError: ``root`` is not a folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"not a folder: {base}")
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / f)
    return sorted(found)


def image_folder(
    root: _PathLike, *, class_subfolders: bool = False, check: str = "decode"
) -> FileImages:
    """All images under ``root``; with ``class_subfolders`` the first folder level names the
    class (labels index the sorted names, files directly in ``root`` are skipped).

    Raises:
        UserError: no image file, or none readable.
    """
    paths = find_images(root)
    base = Path(root)
    labels = None
    classes = None
    if class_subfolders:
        paths = [p for p in paths if len(p.relative_to(base).parts) > 1]
        classes = sorted({p.relative_to(base).parts[0] for p in paths})
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p.relative_to(base).parts[0]] for p in paths]
    if not paths:
        raise UserError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {base}")
    return FileImages(paths, labels, root=base, classes=classes, name=str(base), check=check)


def _resolve(list_file: Path, entry: str) -> Path:
    p = Path(entry).expanduser()
    return p if p.is_absolute() else list_file.parent / p


def _label(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UserError(f"{where}: label must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{where}: label must be an integer, got {value!r}") from None


def _entries_to_source(
    path: Path, entries: list[tuple[Path, int | None]], check: str
) -> FileImages:
    if not entries:
        raise UserError(f"no entries in {path}")
    has = [lab is not None for _, lab in entries]
    if any(has) and not all(has):
        raise UserError(f"{path}: either every entry has a label or none does")
    labels = [int(lab) for _, lab in entries] if all(has) else None  # type: ignore[arg-type]
    paths = [p for p, _ in entries]
    return FileImages(paths, labels, root=path.parent, name=str(path), check=check)


def image_list(path: _PathLike, *, check: str = "decode") -> FileImages:
    """Images named in a text file: ``path`` or ``path<TAB>label`` per line; blank lines and
    lines starting with ``#`` are skipped.

    Raises:
        UserError: unreadable list, bad label, or no readable image.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read list {p}: {short_error(e)}") from None
    entries: list[tuple[Path, int | None]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, lab = line.rstrip("\r").partition("\t")
        label = _label(lab.strip(), f"{p}:{n}") if lab.strip() else None
        entries.append((_resolve(p, name.strip()), label))
    return _entries_to_source(p, entries, check)


def image_manifest(path: _PathLike, *, check: str = "decode") -> FileImages:
    """Images named in a JSONL manifest: one ``{"path": str, "label": int}`` object per line
    (``label`` optional, other keys ignored).

    Raises:
        UserError: unreadable manifest, bad JSON or label, or no readable image.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read manifest {p}: {short_error(e)}") from None
    entries: list[tuple[Path, int | None]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{p}:{n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
            raise UserError(f"{p}:{n}: expected an object with a 'path' string")
        label = _label(obj["label"], f"{p}:{n}") if obj.get("label") is not None else None
        entries.append((_resolve(p, obj["path"]), label))
    return _entries_to_source(p, entries, check)


def idx_images(images: _PathLike, labels: _PathLike | None = None) -> ArrayImages:
    """MNIST / Fashion-MNIST images (``(N, H, W)`` IDX) with labels (``(N,)`` IDX).

    ``labels=None`` looks for the usual sibling (``*-images-idx3-ubyte[.gz]`` ->
    ``*-labels-idx1-ubyte[.gz]``) and goes without labels if there is none.

    Raises:
        UserError: unreadable files, shapes that are not images, or counts that differ.
    """
    p = Path(images)
    if labels is None and "images-idx3" in p.name:
        sibling = p.with_name(p.name.replace("images-idx3", "labels-idx1"))
        labels = sibling if sibling.exists() else None
    array = read_idx(p)
    if array.ndim not in (3, 4):
        raise UserError(f"{p}: expected images (N, H, W[, C]), got shape {array.shape}")
    lab = read_idx(labels) if labels is not None else None
    if lab is not None and lab.shape != (len(array),):
        raise UserError(f"{labels}: expected {len(array)} labels, got shape {lab.shape}")
    return ArrayImages(array, lab, name=p.name)


def cifar_images(
    paths: _PathLike | Sequence[_PathLike], *, coarse: bool = False, test: bool = False
) -> ArrayImages:
    """CIFAR-10/100 batches, binary (``*.bin``) or python (no extension), as one source.

    Args:
        paths: batch files, or a folder (its ``data_batch_*`` / ``train`` batches, or with
            ``test`` its ``test_batch`` / ``test``), binary or python.
        coarse: CIFAR-100 superclass labels.
        test: pick the test batch of a folder.

    Raises:
        UserError: no batch found or none readable; bad files are reported and skipped.
    """
    items = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            want = ("test_batch", "test") if test else ("data_batch", "train")
            found = sorted(
                p for p in item.iterdir() if is_cifar_batch(p) and p.name.startswith(want)
            )
            files += [p for p in found if test or not p.name.startswith("test")]
        else:
            files.append(item)
    if not files:
        raise UserError(f"no CIFAR batches in {', '.join(map(str, items))}")
    parts, bad = [], []
    for f in files:
        try:
            read = read_cifar_binary if f.suffix == ".bin" else read_cifar_pickle
            parts.append(read(f, coarse=coarse))
        except UserError as e:
            bad.append((str(f), str(e)))
    _warn_skipped("CIFAR batches", bad, len(files), noun="files")
    images = np.concatenate([a for a, _ in parts])
    labels = np.concatenate([b for _, b in parts])
    return ArrayImages(images, labels, name=files[0].parent.name or "cifar")


# -- NumPy arrays -------------------------------------------------------------------------
def array_images(
    path: _PathLike, *, images_key: str | None = None, labels_key: str | None = None
) -> ArrayImages:
    """Images from ``.npy`` or ``.npz`` (never unpickled: ``allow_pickle=False``).

    Args:
        path: the file; see :class:`ArrayImages` for the shapes and ranges accepted.
        images_key: the ``.npz`` entry of the images (default: the first of ``images``,
            ``x``, ``data``, ``arr_0``).
        labels_key: the ``.npz`` entry of the labels (default: ``labels``, ``y`` or
            ``targets`` if present).

    Raises:
        UserError: unreadable file, object arrays, missing keys or bad shapes.
    """
    p = Path(path)
    try:
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"cannot read array file {p}: {short_error(e)}") from None
    if isinstance(loaded, np.ndarray):
        return ArrayImages(loaded, None, name=p.name)
    with loaded:
        names = list(loaded.files)
        key = images_key or next((k for k in ("images", "x", "data", "arr_0") if k in names), None)
        lkey = labels_key or next((k for k in ("labels", "y", "targets") if k in names), None)
        if key not in names or (labels_key is not None and labels_key not in names):
            raise UserError(f"{p}: no entry {images_key or 'images'} (has {', '.join(names)})")
        try:
            images = loaded[key]
            labels = loaded[lkey] if lkey else None
        except (OSError, ValueError, EOFError) as e:
            raise UserError(f"cannot read array file {p}: {short_error(e)}") from None
    return ArrayImages(images, labels, name=p.name)


# -- choosing a reader, splitting, the dataset --------------------------------------------
def open_image_source(path: _PathLike, *, class_subfolders: bool = False) -> ImageSource:
    """The reader for ``path``: a folder of images (or of CIFAR batches), ``.txt`` list,
    ``.jsonl`` manifest, ``*-ubyte[.gz]`` IDX, ``.npy``/``.npz``, CIFAR ``*.bin`` or python
    batch, or a single image file.

    Raises:
        UserError: a missing path or an unknown kind of file.
    """
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if any(is_cifar_batch(c) for c in p.iterdir()) and not find_images(p):
            return cifar_images(p)
        return image_folder(p, class_subfolders=class_subfolders)
    if not p.exists():
        raise UserError(f"no such file or folder: {p}")
    if name.endswith((".txt", ".lst")):
        return image_list(p)
    if name.endswith((".jsonl", ".ndjson")):
        return image_manifest(p)
    if name.endswith(("-ubyte", "-ubyte.gz")):
        return idx_images(p)
    if name.endswith((".npy", ".npz")):
        return array_images(p)
    if name.endswith(IMAGE_EXTENSIONS):
        return FileImages([p], root=p.parent, name=str(p))
    if is_cifar_batch(p):
        return cifar_images(p)
    raise UserError(f"{p}: unknown image data format")


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
