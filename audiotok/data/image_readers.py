"""Image readers: folders, lists, manifests, MNIST IDX, CIFAR batches, NumPy arrays.

Each returns an :class:`~audiotok.data.image_sources.ImageSource`:

- :func:`image_folder`: png/jpg/jpeg/webp/bmp in any case, recursive, flat or with class
  subfolders (labels are the sorted subfolder names); decoded with Pillow.
- :func:`image_list` (text, ``path`` or ``path<TAB>label`` per line) and
  :func:`image_manifest` (JSONL, ``{"path": ..., "label": ...}``); relative paths are
  relative to the list's folder.
- :func:`idx_images`: MNIST-style ``*-ubyte[.gz]`` with the sibling labels file, and
  :func:`cifar_images`: CIFAR-10/100 binary or python batches (both parsed defensively in
  :mod:`audiotok.data.image_formats`).
- :func:`array_images`: ``.npy`` / ``.npz`` read with ``allow_pickle=False``.

:func:`open_image_source` picks the reader from a path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audiotok.data.image_formats import (
    is_cifar_batch,
    read_cifar_binary,
    read_cifar_pickle,
    read_idx,
    short_error,
)
from audiotok.data.image_sources import (
    IMAGE_EXTENSIONS,
    ArrayImages,
    FileImages,
    ImageSource,
    warn_skipped,
)
from audiotok.errors import UserError

__all__ = [
    "find_images",
    "image_folder",
    "image_list",
    "image_manifest",
    "idx_images",
    "cifar_images",
    "array_images",
    "open_image_source",
]

_PathLike = str | os.PathLike


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
    warn_skipped("CIFAR batches", bad, len(files), noun="files")
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


# -- choosing a reader -------------------------------------------------------------------
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
