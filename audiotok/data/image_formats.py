"""Binary image formats read without trusting them: MNIST IDX and CIFAR batches.

- :func:`read_idx`: MNIST-style ``*-ubyte`` and ``*-ubyte.gz``; the header's dimensions are
  checked against the file size (for gzip, against the size in its trailer) before anything
  is allocated.
- :func:`read_cifar_binary` / :func:`read_cifar_pickle`: CIFAR-10/100 binary batches
  (``data_batch_*.bin``) and python batches, the latter through :func:`restricted_unpickle`,
  which resolves only NumPy's array reconstruction (no other global, so a pickle cannot run
  code).

Each returns NumPy arrays; :mod:`audiotok.data.image_readers` wraps them as image sources.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from audiotok.errors import UserError

__all__ = [
    "MAX_IDX_BYTES",
    "read_idx",
    "read_cifar_binary",
    "read_cifar_pickle",
    "restricted_unpickle",
    "is_cifar_batch",
]

_PathLike = str | os.PathLike


def short_error(e: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), capped."""
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


# -- MNIST IDX ----------------------------------------------------------------------------
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Largest IDX payload read by default (bytes); a larger header is refused before reading.
MAX_IDX_BYTES = 1 << 32


def read_idx(path: _PathLike, *, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """An MNIST-style IDX file (``*-ubyte`` or ``*-ubyte.gz``) as an array of its shape.

    The 4-byte magic (two zeros, a type code, the number of dimensions) and the dimensions
    are read first; their product times the item size must equal the file's payload (for
    gzip, the uncompressed size from the trailer, modulo 2**32) before the payload is read.

    Raises:
        UserError: bad magic or type, sizes that disagree, truncated or oversized data.
    """
    p = Path(path)
    gz = p.name.lower().endswith(".gz")
    try:
        size = p.stat().st_size
        with open(p, "rb") as raw:
            trailer = None
            if gz:
                if size < 18:
                    raise UserError(f"{p}: not a gzip file (only {size} bytes)")
                raw.seek(-4, os.SEEK_END)
                trailer = int.from_bytes(raw.read(4), "little")
                raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if gz else raw
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES or not head[3]:
                raise UserError(f"{p}: not an IDX file (magic {head.hex() or 'missing'})")
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise UserError(f"{p}: truncated IDX header")
            dims = [int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            payload = math.prod(dims) * dtype.itemsize
            total = 4 + 4 * ndim + payload
            if payload > max_bytes:
                raise UserError(f"{p}: header claims {payload} bytes, over the {max_bytes} limit")
            have = trailer if gz else size
            if have != (total % (1 << 32) if gz else total):
                raise UserError(
                    f"{p}: header says {dims} x {dtype.itemsize} bytes ({total} bytes with the "
                    f"header), the file holds {have}"
                )
            data = f.read(payload)
            if len(data) != payload or f.read(1):
                raise UserError(f"{p}: data size does not match the header {dims}")
    except UserError:
        raise
    except (OSError, EOFError, ValueError) as e:  # gzip/zlib errors are OSError/EOFError
        raise UserError(f"cannot read IDX file {p}: {short_error(e)}") from None
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(dims)


# -- CIFAR --------------------------------------------------------------------------------
_CIFAR_PIXELS = 32 * 32 * 3

#: The only globals a CIFAR python batch may name: NumPy's array reconstruction, and the
#: latin-1 ``_codecs.encode`` that Python 3 pickles (protocol < 3) use to rebuild bytes.
_PICKLE_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module == "_codecs":
            return _latin1_bytes
        import importlib

        # numpy 2 moved numpy.core to numpy._core; numpy 1 has only numpy.core
        for mod in (module.replace("numpy.core", "numpy._core"), module):
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    # only the str -> bytes rebuild pickle emits; no other codec (no zlib bombs)
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


def restricted_unpickle(data: bytes) -> Any:
    """Unpickle containers, bytes, strings, numbers and NumPy arrays only.

    Python 2 pickles (the CIFAR python batches) are read with ``encoding="bytes"``.

    Raises:
        pickle.UnpicklingError: on any other global (``os.system``, ``eval``, classes...).
    """
    return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _check_cifar(path: Path, data: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels outside [0, {num_classes})")


def read_cifar_binary(
    path: _PathLike, *, cifar100: bool | None = None, coarse: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR binary batch: records of label byte(s) then 3072 bytes of R, G, B planes.

    Args:
        path: e.g. ``data_batch_1.bin`` (CIFAR-10) or ``train.bin`` (CIFAR-100).
        cifar100: two label bytes (coarse, fine) per record; ``None`` guesses from the name
            (CIFAR-10's files start with ``data_batch`` or ``test_batch``), then the size.
        coarse: CIFAR-100's 20 superclasses instead of the 100 classes.

    Returns:
        ``images (N, 32, 32, 3)`` uint8 and ``labels (N,)`` int64.

    Raises:
        UserError: a size that is not a whole number of records, or bad labels.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read CIFAR batch {p}: {short_error(e)}") from None
    if cifar100 is None:
        cifar10_name = p.name.startswith(("data_batch", "test_batch"))
        cifar100 = not cifar10_name and len(raw) % (_CIFAR_PIXELS + 2) == 0
    record = _CIFAR_PIXELS + (2 if cifar100 else 1)
    if not raw or len(raw) % record:
        raise UserError(f"{p}: {len(raw)} bytes is not a whole number of {record}-byte records")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, 0 if (coarse or not cifar100) else 1].astype(np.int64)
    images = rows[:, record - _CIFAR_PIXELS :].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    _check_cifar(p, images, labels, 20 if coarse else 100 if cifar100 else 10)
    return np.ascontiguousarray(images), labels


def read_cifar_pickle(path: _PathLike, *, coarse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR python batch (a pickled dict with ``data (N, 3072)`` and ``labels`` or
    ``fine_labels``/``coarse_labels``), through :func:`restricted_unpickle`.

    Returns:
        ``images (N, 32, 32, 3)`` uint8 and ``labels (N,)`` int64.

    Raises:
        UserError: a refused or broken pickle, or a dict that is not a CIFAR batch.
    """
    p = Path(path)
    try:
        obj = restricted_unpickle(p.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, MemoryError) as e:
        raise UserError(f"cannot read CIFAR python batch {p}: {short_error(e)}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{p}: expected a dict, got {type(obj).__name__}")
    d = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    data = d.get("data")
    keys = ("coarse_labels",) if coarse else ("labels", "fine_labels")
    raw_labels = next((d[k] for k in keys if k in d), None)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise UserError(f"{p}: 'data' must be a uint8 array (N, 3072)")
    if data.shape[1] != _CIFAR_PIXELS or raw_labels is None:
        raise UserError(f"{p}: expected data (N, 3072) and one of {keys}")
    labels = np.asarray(raw_labels)
    if labels.dtype.kind not in "iu":
        raise UserError(f"{p}: labels must be integers")
    num_classes = 20 if coarse else 100 if "fine_labels" in d else 10
    labels = labels.astype(np.int64)
    _check_cifar(p, data, labels, num_classes)
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def is_cifar_batch(p: Path) -> bool:
    stem = p.name.removesuffix(".bin")
    return stem.startswith("data_batch") or stem in ("train", "test", "test_batch")
