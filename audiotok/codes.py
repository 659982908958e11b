"""Token files: integer codes ``(K, T')`` on disk, plain ``.npy`` or self-describing ``.npz``.

``.npy`` (default): a standard NumPy array file holding the codes ``(K, T')`` in the smallest
unsigned dtype that holds ``codebook_size`` (uint8, uint16 or uint32), so that
``np.load(path, allow_pickle=False)`` (also with ``mmap_mode="r"``) gives the codes. After the
array data comes a small metadata trailer, which ``np.load`` ignores since it reads exactly
the bytes the header announces::

    <npy header><K*T' codes><JSON metadata, UTF-8><uint64 LE: JSON length><b"ATOKMETA">

``.npz``: an uncompressed NumPy zip with ``codes`` (as above) and ``meta``, a 0-d unicode
array holding the same JSON; both load with ``allow_pickle=False``.

The metadata (:class:`CodesMeta`) names the model that made the codes (``model_id``,
``family``), its rates, and the original audio's length and rate, so that ``audiotok decode``
can restore the exact length and refuse codes from another model.

Image token files hold ``(K, H', W')`` codes in the same two containers; their metadata
(:class:`ImageCodesMeta`, ``"modality": "image"``) records the original size ``(H, W)``, the
channels and the downsampling factor, so that decode crops to the exact size. Metadata
without ``modality`` (files written before images existed) is audio.

Writes are atomic and race-safe (:mod:`audiotok.atomic`: a temporary file in the destination
folder, then an exclusive link, or a rename with ``force``), respect the umask, and never
replace an existing file unless ``force``.

Nothing in a file is trusted: the trailer is at most :data:`MAX_META_BYTES`, and its numbers
must agree with the codes and lie in sane ranges (:data:`SAMPLE_RATE_RANGE`,
:data:`MAX_CHANNELS`; ``length`` within one frame of ``frames x hop_length``,
``original_length`` within one frame of that at the original rate), so that a crafted file
can neither make a huge allocation nor an empty or absurd output. Every problem raises
:class:`audiotok.errors.UserError` as ``"<file>: <problem>"``.

Over 400 lines on purpose: the token-file format (``.npy`` with trailer, ``.npz``) and the
checks that keep a crafted file from sizing an allocation belong together.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import struct
import typing
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audiotok.atomic import check_destination, commit, create_temp, describe_os_error
from audiotok.errors import UserError

__all__ = [
    "CodesMeta",
    "ImageCodesMeta",
    "AnyCodesMeta",
    "meta_from_dict",
    "MAX_IMAGE_SIDE",
    "FORMAT",
    "MAGIC",
    "MAX_META_BYTES",
    "SAMPLE_RATE_RANGE",
    "MAX_CHANNELS",
    "codes_dtype",
    "write_codes",
    "read_codes",
]

FORMAT = "audiotok-codes/1"
MAGIC = b"ATOKMETA"
_TAIL = struct.Struct("<Q")
#: Largest metadata trailer read (the real one is ~400 bytes).
MAX_META_BYTES = 1 << 16
#: Sample rates (Hz) accepted anywhere in audiotok: audio files, token files, the API.
SAMPLE_RATE_RANGE = (1000, 384_000)
#: Most audio channels accepted in a token file's metadata.
MAX_CHANNELS = 64
_MAX_NPY_HEADER = 4096
#: Most codes a token file may hold (days of audio; a bigger array is not a token file).
MAX_CODES = 1 << 30
#: Largest image side (pixels) and most image channels accepted in image token metadata.
MAX_IMAGE_SIDE = 1 << 16
MAX_IMAGE_CHANNELS = 4


@dataclass(frozen=True)
class CodesMeta:
    """What a token file says about its codes.

    Attributes:
        model_id: id of the model that made the codes (see :func:`audiotok.hub.model_id_for`).
        family: model family, e.g. ``"soundstream"``.
        audiotok_version: version that wrote the file.
        sample_rate: the model's sample rate (Hz).
        frame_rate: code frames per second.
        hop_length: samples per code frame at ``sample_rate``.
        channels: the model's audio channels.
        num_codebooks: code rows K in this file (may be fewer than the model has).
        codebook_size: codes lie in ``[0, codebook_size)``.
        length: samples at ``sample_rate`` that the codes stand for (decode trims to this).
        original_sample_rate: the source file's rate.
        original_length: the source file's length in samples at its own rate.
        original_channels: the source file's channels.
        modality: ``"audio"`` (files written before images existed lack it: audio).
        format: ``FORMAT``.
    """

    model_id: str
    family: str
    audiotok_version: str
    sample_rate: int
    frame_rate: float
    hop_length: int
    channels: int
    num_codebooks: int
    codebook_size: int
    length: int
    original_sample_rate: int
    original_length: int
    original_channels: int
    modality: str = "audio"
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodesMeta:
        """Parse metadata, ignoring unknown keys (files from newer versions stay readable).

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        return _parse_fields(cls, d)

    def describe(self) -> str:
        """A few words on the model, for messages: ``"soundstream, 24000 Hz"``."""
        return f"{self.family}, {self.sample_rate} Hz"

    def check(self, frames: int) -> None:
        """Check the numbers against each other and against ``frames`` code frames.

        Raises:
            ValueError: a value out of its range or inconsistent with the codes.
        """
        lo, hi = SAMPLE_RATE_RANGE
        for name in ("sample_rate", "original_sample_rate"):
            rate = getattr(self, name)
            if not lo <= rate <= hi:
                raise ValueError(f"{name} {rate} is outside {lo}..{hi} Hz")
        for name in ("channels", "original_channels"):
            if not 1 <= getattr(self, name) <= MAX_CHANNELS:
                raise ValueError(f"{name} {getattr(self, name)} is outside 1..{MAX_CHANNELS}")
        if not 1 <= self.hop_length <= self.sample_rate:
            raise ValueError(f"hop_length {self.hop_length} is outside 1..{self.sample_rate}")
        if not 1 <= self.num_codebooks <= 4096 or not 1 <= self.codebook_size <= 1 << 32:
            raise ValueError("num_codebooks or codebook_size out of range")
        hop = self.hop_length
        if not (frames - 1) * hop < self.length <= frames * hop:
            raise ValueError(
                f"length {self.length} does not fit {frames} code frames of {hop} samples"
            )
        # the same span at the original rate, within one frame (plus resampler rounding)
        scale = self.original_sample_rate / self.sample_rate
        expected = self.length * scale
        if abs(self.original_length - expected) > hop * scale + 2:
            raise ValueError(
                f"original_length {self.original_length} does not fit {frames} code frames "
                f"(about {round(expected)} samples at {self.original_sample_rate} Hz)"
            )


@dataclass(frozen=True)
class ImageCodesMeta:
    """What an image token file says about its codes ``(K, H', W')``.

    Attributes:
        model_id: id of the model that made the codes.
        family: model family, e.g. ``"image_vqvae"``.
        audiotok_version: version that wrote the file.
        channels: the model's image channels.
        downsample_factor: f, pixels per code along each side.
        num_codebooks: code rows K in this file.
        codebook_size: codes lie in ``[0, codebook_size)``.
        height, width: the original image's size; the code grid is ``(ceil(height / f),
            ceil(width / f))`` and decode crops to it.
        original_channels: the source file's channels (1 grey, 3 colour).
        modality: ``"image"``.
        format: ``FORMAT``.
    """

    model_id: str
    family: str
    audiotok_version: str
    channels: int
    downsample_factor: int
    num_codebooks: int
    codebook_size: int
    height: int
    width: int
    original_channels: int
    modality: str = "image"
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageCodesMeta:
        """Parse metadata, ignoring unknown keys.

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        return _parse_fields(cls, d)

    def describe(self) -> str:
        """A few words on the model, for messages: ``"image_vqvae, 1 channel(s), f=4"``."""
        return f"{self.family}, {self.channels} channel(s), f={self.downsample_factor}"

    def check(self, grid: tuple[int, ...]) -> None:
        """Check the numbers against each other and against the code grid ``(H', W')``.

        Raises:
            ValueError: a value out of its range or inconsistent with the codes.
        """
        for name in ("channels", "original_channels"):
            if not 1 <= getattr(self, name) <= MAX_IMAGE_CHANNELS:
                raise ValueError(f"{name} {getattr(self, name)} is outside 1..{MAX_IMAGE_CHANNELS}")
        f = self.downsample_factor
        if not 1 <= f <= 4096:
            raise ValueError(f"downsample_factor {f} is outside 1..4096")
        if not 1 <= self.num_codebooks <= 4096 or not 1 <= self.codebook_size <= 1 << 32:
            raise ValueError("num_codebooks or codebook_size out of range")
        for name in ("height", "width"):
            if not 1 <= getattr(self, name) <= MAX_IMAGE_SIDE:
                raise ValueError(f"{name} {getattr(self, name)} is outside 1..{MAX_IMAGE_SIDE}")
        expected = (-(-self.height // f), -(-self.width // f))
        if tuple(grid) != expected:
            raise ValueError(
                f"a {self.height}x{self.width} image has a {expected[0]}x{expected[1]} code "
                f"grid at f={f}, the file holds {'x'.join(map(str, grid))}"
            )


AnyCodesMeta = CodesMeta | ImageCodesMeta


def _parse_fields(cls: type, d: dict[str, Any]) -> Any:
    """``cls(**fields of d)``, each value checked by :func:`audiotok.config.coerce`."""
    from audiotok.config import ConfigError, coerce

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            if f.default is dataclasses.MISSING:
                raise ValueError(f"metadata lacks {f.name!r}")
            continue
        value = d[f.name]
        try:  # the one value checker of every config (audiotok.config.coerce)
            kwargs[f.name] = coerce(value, hints[f.name], f.name)
        except ConfigError:
            raise ValueError(f"metadata field {f.name!r} has a bad value {value!r}") from None
        if isinstance(kwargs[f.name], float) and not math.isfinite(kwargs[f.name]):
            raise ValueError(f"metadata field {f.name!r} has a bad value {value!r}")
    return cls(**kwargs)


def meta_from_dict(d: dict[str, Any]) -> AnyCodesMeta:
    """:class:`CodesMeta` or :class:`ImageCodesMeta` by ``d["modality"]`` (absent: audio).

    Raises:
        ValueError: an unknown modality, a missing field or a bad value.
    """
    modality = d.get("modality", "audio")
    if modality == "audio":
        return CodesMeta.from_dict(d)
    if modality == "image":
        return ImageCodesMeta.from_dict(d)
    raise ValueError(f"unknown modality {modality!r}")


class _ModelLike(Protocol):
    model_id: str
    num_codebooks: int
    codebook_size: int


def codes_dtype(codebook_size: int) -> np.dtype:
    """Smallest unsigned dtype holding ``0 .. codebook_size - 1``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if codebook_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _check_codes(
    codes: np.ndarray,
    name: str,
    codebook_size: int | None,
    model: _ModelLike | None = None,
    *,
    image: bool = False,
) -> None:
    """Codes ``(K, T')`` (``(K, H', W')`` for an ``image``) as
    :func:`audiotok.quantize.base.check_codes` wants them (at most the ``model``'s
    codebooks), as a ``UserError`` naming the file."""
    # the one validator of codes lives with the quantizers; imported here, not at the top,
    # so that importing this module (audio_io reads its constants) does not import torch
    from audiotok.quantize.base import check_codes, check_num_codebooks

    count = None
    if model is not None:
        count = partial(check_num_codebooks, total=model.num_codebooks, partial=True, owner="model")
    try:
        check_codes(
            codes,
            layout=("K", "H'", "W'") if image else ("K", "T'"),
            codebook_size=codebook_size,
            num_codebooks=count,
            types=(np.ndarray,),
        )
    except ValueError as e:
        raise UserError(f"{name}: {e}") from None


def _check_meta(codes: np.ndarray, meta: AnyCodesMeta, name: str, problem: str) -> None:
    """The codes agree with their metadata (rows, frames vs lengths); else ``UserError``
    ``"<name>: <problem> (...)"``."""
    if codes.shape[0] != meta.num_codebooks:
        raise UserError(
            f"{name}: {codes.shape[0]} code rows but metadata says {meta.num_codebooks}"
        )
    try:
        if isinstance(meta, ImageCodesMeta):
            meta.check(codes.shape[1:])
        else:
            meta.check(codes.shape[1])
    except ValueError as e:
        raise UserError(f"{name}: {problem} ({e})") from None


def write_codes(
    path: str | os.PathLike,
    codes: Any,
    meta: AnyCodesMeta | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write a token file; the format follows the extension (``.npy`` or ``.npz``).

    Args:
        path: destination ``.npy`` or ``.npz``.
        codes: ``(K, T')`` integer array or tensor (``(1, K, T')`` is accepted too); with
            :class:`ImageCodesMeta`, ``(K, H', W')`` (or ``(1, K, H', W')``).
        meta: metadata to embed; required for ``.npz``; ``None`` writes a bare ``.npy``.
        force: replace an existing file.

    Returns:
        The path written.

    Raises:
        UserError: bad codes, unknown extension, or an existing file without ``force``.
    """
    p = Path(path)
    arr = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
    image = isinstance(meta, ImageCodesMeta)
    if arr.ndim == (4 if image else 3) and arr.shape[0] == 1:
        arr = arr[0]
    size = meta.codebook_size if meta is not None else None
    _check_codes(arr, str(p), size, image=image)
    if meta is not None:
        _check_meta(arr, meta, str(p), "inconsistent metadata")
    ext = p.suffix.lower()
    if ext not in (".npy", ".npz"):
        raise UserError(f"{p}: token files end in .npy or .npz, got {p.suffix!r}")
    if ext == ".npz" and meta is None:
        raise UserError(f"{p}: .npz token files need metadata")
    arr = np.ascontiguousarray(arr.astype(codes_dtype(size or int(arr.max()) + 1)))
    check_destination(p, force)
    fd, tmp = create_temp(p)
    try:
        with os.fdopen(fd, "wb") as f:
            if ext == ".npy":
                np.lib.format.write_array(f, arr, allow_pickle=False)
                if meta is not None:
                    blob = json.dumps(meta.to_dict(), sort_keys=True).encode()
                    f.write(blob + _TAIL.pack(len(blob)) + MAGIC)
            else:
                meta_arr = np.array(json.dumps(meta.to_dict(), sort_keys=True))
                np.savez(f, codes=arr, meta=meta_arr)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{p}: cannot write ({describe_os_error(e)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return commit(tmp, p, force=force)


def _npy_header(p: Path, head: bytes, what: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` from the first bytes of a ``.npy``."""
    f = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        # a crafted header can be megabytes of nested tuples (numpy parses it recursively)
        fmt = "<H" if version == (1, 0) else "<I"
        (hlen,) = struct.unpack(fmt, head[8 : 8 + struct.calcsize(fmt)])
        if hlen > _MAX_NPY_HEADER:
            raise ValueError(f"header of {hlen} bytes")
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception as e:  # ValueError, SyntaxError, RecursionError, struct.error ...
        raise UserError(f"{p}: not a valid {what} ({e})") from None
    if dtype.hasobject or dtype.kind not in "ui" and what != "metadata":
        raise UserError(f"{p}: expected integer codes, got dtype {dtype}")
    if math.prod(shape) > MAX_CODES:
        raise UserError(f"{p}: {math.prod(shape)} codes; a token file holds at most {MAX_CODES}")
    return shape, fortran, dtype, f.tell()


def _parse_npy(p: Path, data: bytes, what: str) -> np.ndarray:
    """The array stored in ``.npy`` bytes (a member of an ``.npz``)."""
    shape, fortran, dtype, offset = _npy_header(p, data[: _MAX_NPY_HEADER + 16], what)
    count = math.prod(shape)
    if offset + count * dtype.itemsize > len(data):
        raise UserError(f"{p}: token file is truncated")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def _read_npy(p: Path) -> tuple[np.ndarray, AnyCodesMeta | None]:
    size = p.stat().st_size
    with open(p, "rb") as f:
        shape, fortran, dtype, offset = _npy_header(
            p, f.read(_MAX_NPY_HEADER + 16), ".npy token file"
        )
        count = math.prod(shape)
        end = offset + count * dtype.itemsize
        if end > size:
            raise UserError(f"{p}: token file is truncated ({size} of {end} bytes)")
        if size - end > MAX_META_BYTES + _TAIL.size + len(MAGIC):  # before reading it all
            raise UserError(
                f"{p}: corrupt token file metadata ({size - end} trailing bytes; "
                f"at most {MAX_META_BYTES})"
            )
        f.seek(offset)
        data = f.read(end - offset)
        tail = f.read()
    arr = np.frombuffer(data, dtype=dtype, count=count)
    arr = arr.reshape(shape, order="F" if fortran else "C").copy()
    meta = None
    if tail:
        if len(tail) < _TAIL.size + len(MAGIC) or not tail.endswith(MAGIC):
            raise UserError(f"{p}: corrupt token file ({len(tail)} unexpected trailing bytes)")
        (n,) = _TAIL.unpack(tail[-len(MAGIC) - _TAIL.size : -len(MAGIC)])
        if n != len(tail) - _TAIL.size - len(MAGIC):
            raise UserError(f"{p}: corrupt token file metadata (bad length)")
        meta = _parse_meta(p, tail[:n])
    return arr, meta


def _parse_meta(p: Path, blob: bytes | str) -> AnyCodesMeta:
    if len(blob) > MAX_META_BYTES:
        raise UserError(f"{p}: corrupt token file metadata (more than {MAX_META_BYTES} bytes)")
    try:
        d = json.loads(blob)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        return meta_from_dict(d)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        msg = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise UserError(f"{p}: corrupt token file metadata ({msg})") from None


def _read_npz(p: Path) -> tuple[np.ndarray, AnyCodesMeta | None]:
    # read the members ourselves: a crafted zip may announce (or inflate to) gigabytes
    limit = max(p.stat().st_size * 2, 1 << 20)  # audiotok writes uncompressed members
    try:
        with zipfile.ZipFile(p) as z:
            infos = {i.filename: i for i in z.infolist()}
            if "codes.npy" not in infos:
                raise UserError(f"{p}: .npz token file has no 'codes' array")
            for name in ("codes.npy", "meta.npy"):
                if name in infos and infos[name].file_size > limit:
                    raise UserError(f"{p}: corrupt .npz token file ({name} claims too much data)")
            data = z.read("codes.npy")
            meta_data = z.read("meta.npy") if "meta.npy" in infos else None
    except (UserError, PermissionError):
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as e:
        raise UserError(f"{p}: not a valid .npz token file ({e})") from None
    arr = _parse_npy(p, data, ".npz token file")
    meta = None
    if meta_data is not None:
        if len(meta_data) > MAX_META_BYTES * 4 + _MAX_NPY_HEADER:  # UTF-32 in .npy
            raise UserError(f"{p}: corrupt token file metadata (more than {MAX_META_BYTES} bytes)")
        meta_arr = _parse_npy(p, meta_data, "metadata")
        if meta_arr.dtype.kind != "U" or meta_arr.ndim != 0:
            raise UserError(f"{p}: corrupt token file metadata (expected a JSON string)")
        meta = _parse_meta(p, str(meta_arr))
    return arr, meta


def read_codes(
    path: str | os.PathLike, model: _ModelLike | None = None
) -> tuple[np.ndarray, AnyCodesMeta | None]:
    """Read and validate a token file.

    Args:
        path: a ``.npy`` (with or without the metadata trailer) or ``.npz`` token file.
        model: when given (anything with ``model_id``, ``num_codebooks`` and
            ``codebook_size``, and optionally ``modality``, e.g. an
            :class:`~audiotok.tokenizer.AudioTokenizer` or ``ImageTokenizer``), the codes
            must fit it and, if the file has metadata, come from it.

    Returns:
        ``(codes, meta)``: audio ``codes (K, T')`` or image ``codes (K, H', W')`` as stored
        (unsigned ints), ``meta`` a :class:`CodesMeta` / :class:`ImageCodesMeta`, or ``None``
        for a bare ``.npy`` (read as image codes only for an image ``model``).

    Raises:
        UserError: missing, empty or corrupt file; metadata that is too large, out of range
            or inconsistent with the codes (see :meth:`CodesMeta.check`,
            :meth:`ImageCodesMeta.check`); codes of the wrong rank or not non-negative
            integers; codes out of range or with more rows than the model has; codes of the
            other modality or made by another model (the message names both ids).
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: file not found")
    if not p.is_file():
        raise UserError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise UserError(f"{p}: file is empty (0 bytes)")
    try:
        if p.suffix.lower() == ".npz" or zipfile.is_zipfile(p):
            arr, meta = _read_npz(p)
        else:
            arr, meta = _read_npy(p)
    except OSError as e:
        raise UserError(f"{p}: cannot read ({describe_os_error(e)})") from None
    wanted = getattr(model, "modality", None)
    if meta is not None:
        modality = meta.modality
    else:
        modality = wanted or "audio"
    image = modality == "image"
    _check_codes(arr, str(p), meta.codebook_size if meta is not None else None, image=image)
    if meta is not None:
        _check_meta(arr, meta, str(p), "corrupt token file metadata")
    if model is not None:
        if wanted is not None and wanted != modality:
            raise UserError(
                f"{p}: these are {modality} tokens but the model in use ({model.model_id}) "
                f"is an {wanted} model; pass --model with the model that made them"
            )
        if meta is not None and meta.model_id != model.model_id:
            raise UserError(
                f"{p}: tokens were made by model {meta.model_id} ({meta.describe()}) "
                f"but the model in use is {model.model_id}; "
                "pass --model with the model that made them"
            )
        _check_codes(arr, str(p), model.codebook_size, model, image=image)
    return arr, meta
