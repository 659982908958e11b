"""LM-coded token files (``.atlm``): codes ``(K, T')`` arithmetic-coded under a GPT prior.

The entropy-coded sibling of :mod:`audiotok.codes`: the codes are stored in about as many
bits as the prior's cross-entropy says they hold (:mod:`audiotok.prior.lmcoding`), as in
EnCodec's LM-coded bitstreams (arXiv:2210.13438, section 3.3), and read back exactly with the
same prior. Layout (``uint``: an unsigned LEB128 varint; ``str``: uint length + UTF-8)::

    b"ATLM"  u8 version  u8 flags (bit 0: audio metadata follows)
    uint K  uint T'  uint codebook_size  uint class label + 1 (0: unconditional)
    uint context (positions the prior saw at once; the window slides past it)
    u32 LE  CRC-32 of the codes (uint32 LE, row-major (K, T'))
    6 bytes  prior fingerprint (its 12 hex digits)
    [metadata: str model_id  str family  str audiotok_version  uint sample_rate
     f64 LE frame_rate  uint hop_length  uint channels  uint length
     uint original_sample_rate  uint original_length  uint original_channels]
    <bitstream>
    u32 LE  CRC-32 of every byte before it

The metadata carries the fields of :class:`audiotok.codes.CodesMeta` (``model_id`` names the
tokenizer; ``num_codebooks`` and ``codebook_size`` are K and the header's size) in about 50
bytes, so that decode restores the source's length, rate and channels; header and checksum
of a 24 kHz file come to about 80 bytes.

Nothing in a file is trusted: the header is parsed with bounds checks, the whole-file CRC
catches corruption and truncation, K and ``codebook_size`` must be the prior's and ``T'`` at
most :data:`MAX_FRAMES` before the decoder allocates anything, and a file written with
another prior (its fingerprint, :func:`~audiotok.prior.lmcoding.prior_fingerprint`) is
refused. The codes' CRC, checked after decoding, catches a prior that computes differently
here than where the file was written (see lmcoding.py). Every problem is one
:class:`audiotok.errors.UserError` line ``"<file>: <problem>"``. Writes are atomic
(:mod:`audiotok.atomic`) and never replace a file without ``force``.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audiotok.atomic import check_destination, describe_os_error, open_atomic
from audiotok.codes import CodesMeta, codes_dtype
from audiotok.errors import UserError

if TYPE_CHECKING:
    from audiotok.prior.gpt import GPT
    from audiotok.prior.lmcoding import LMCodingStats

__all__ = [
    "MAGIC",
    "VERSION",
    "SUFFIX",
    "MAX_FRAMES",
    "encode_lm_bytes",
    "decode_lm_bytes",
    "write_lm_file",
    "read_lm_file",
]

MAGIC = b"ATLM"
VERSION = 1
SUFFIX = ".atlm"
#: Most code frames an LM-coded file may hold (62 hours at 75 Hz): bounds the decoder's grid.
MAX_FRAMES = 1 << 24
#: the CodesMeta fields a file keeps (K and codebook_size are in the header)
_META_STRINGS = ("model_id", "family", "audiotok_version")
_META_NUMBERS = (
    "sample_rate",
    "frame_rate",
    "hop_length",
    "channels",
    "length",
    "original_sample_rate",
    "original_length",
    "original_channels",
)
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_HAS_META = 1
_MAX_STR = 255
_FINGERPRINT_BYTES = 6  # the 12 hex digits of prior_fingerprint


def _codes_crc(codes: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(codes, dtype="<u4").tobytes())


def _uint(n: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low bits first, high bit set on all but the last."""
    if n < 0:
        raise ValueError(f"cannot store {n} as an unsigned varint")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    if len(b) > _MAX_STR:
        raise UserError(f"metadata string too long ({len(b)} bytes): {s[:40]}...")
    return _uint(len(b)) + b


class _Reader:
    """Bounds-checked reads from a byte string; anything malformed is ``ValueError``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self) -> int:
        n = 0
        for shift in range(0, 64, 7):  # at most 10 bytes: a u64
            byte = self.take(1)[0]
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return n
        raise ValueError("varint longer than 64 bits")

    def string(self) -> str:
        n = self.uint()
        if n > _MAX_STR:
            raise ValueError("string too long")
        return self.take(n).decode()


def _prior_shape(prior: GPT) -> tuple[int, int]:
    from audiotok.prior.gpt import GPT

    if not isinstance(prior, GPT):
        raise UserError(f"LM coding needs a causal GPT prior, got {type(prior).__name__}")
    return prior.config.num_codebooks, prior.config.codebook_size


def encode_lm_bytes(
    codes: Any,
    prior: GPT,
    meta: CodesMeta | None = None,
    *,
    class_label: int | None = None,
    context: int | None = None,
) -> tuple[bytes, LMCodingStats]:
    """The bytes of an ``.atlm`` file and what its bitstream cost.

    Args:
        codes: ``(K, T')`` integer array or tensor (``(1, K, T')`` too), K the prior's.
        prior: a float32 :class:`~audiotok.prior.gpt.GPT`.
        meta: the token metadata to keep (``audiotok encode`` has it), or None.
        class_label: the prior's class to condition on; None: unconditional.
        context: positions the prior sees at once (default its ``block_size``); a prior
            trained on shorter windows than its ``block_size`` codes better with their length.

    Raises:
        UserError: codes that do not fit the prior, metadata that disagrees with them, or
            a prior trained on another tokenizer's codes.
    """
    from audiotok.prior.lmcoding import encode_with_stats, prior_fingerprint

    k, v = _prior_shape(prior)
    arr = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[0] != k or arr.dtype.kind not in "ui":
        raise UserError(f"codes must be integer ({k}, T') for this prior, got {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= v):
        raise UserError(f"codes must be in 0..{v - 1} for this prior")
    if arr.shape[1] > MAX_FRAMES:
        raise UserError(f"{arr.shape[1]} frames; an LM-coded file holds at most {MAX_FRAMES}")
    flags, tail = 0, b""
    if meta is not None:
        if (meta.num_codebooks, meta.codebook_size) != (k, v):
            raise UserError(
                f"metadata says {meta.num_codebooks} codebooks of {meta.codebook_size}, "
                f"the prior codes {k} of {v}"
            )
        wanted = prior.config.tokenizer_id
        if wanted and wanted != meta.model_id:
            raise UserError(
                f"the prior was trained on codes of model {wanted}, these come from {meta.model_id}"
            )
        try:
            meta.check(arr.shape[1])
        except ValueError as e:
            raise UserError(f"inconsistent metadata ({e})") from None
        flags |= _HAS_META
        tail = b"".join(_str(getattr(meta, f)) for f in _META_STRINGS)
        numbers = [int(getattr(meta, f)) for f in _META_NUMBERS if f != "frame_rate"]
        tail += _uint(numbers[0]) + _F64.pack(meta.frame_rate) + b"".join(map(_uint, numbers[1:]))
    try:
        context = prior.config.block_size if context is None else int(context)
        stream, stats = encode_with_stats(
            prior, arr.astype(np.int64), class_label=class_label, context=context
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    label = 0 if class_label is None else int(class_label) + 1
    head = (
        MAGIC + bytes([VERSION, flags]) + b"".join(map(_uint, (k, arr.shape[1], v, label, context)))
    )
    head += _U32.pack(_codes_crc(arr)) + bytes.fromhex(prior_fingerprint(prior))
    body = head + tail + stream
    return body + _U32.pack(zlib.crc32(body)), stats


def decode_lm_bytes(
    data: bytes, prior: GPT, name: str = "<bytes>", *, model_id: str | None = None
) -> tuple[np.ndarray, CodesMeta | None]:
    """Codes ``(K, T')`` (smallest unsigned dtype) and metadata of ``.atlm`` bytes.

    ``model_id``, when given, must be the tokenizer the metadata names (checked before the
    slow part, the decoding).

    Raises:
        UserError: ``"<name>: <problem>"`` for anything but a valid file of this prior (and
            of the tokenizer ``model_id``).
    """
    from audiotok.prior.lmcoding import decode_codes, prior_fingerprint

    k, v = _prior_shape(prior)
    if not data.startswith(MAGIC):
        raise UserError(f"{name}: not an LM-coded token file (no {MAGIC.decode()} magic)")
    if len(data) < len(MAGIC) + 2 + _U32.size:
        raise UserError(f"{name}: LM-coded file is truncated ({len(data)} bytes)")
    version, flags = data[len(MAGIC)], data[len(MAGIC) + 1]
    if version != VERSION:
        raise UserError(f"{name}: LM-coded file version {version}, this audiotok reads {VERSION}")
    (crc,) = _U32.unpack(data[-_U32.size :])
    if crc != zlib.crc32(data[: -_U32.size]):
        raise UserError(f"{name}: LM-coded file is truncated or corrupt (checksum mismatch)")
    r = _Reader(data[: -_U32.size])
    r.pos = len(MAGIC) + 2
    try:
        fk, frames, fv, label, context = (r.uint() for _ in range(5))
        (codes_crc,) = _U32.unpack(r.take(_U32.size))
        fingerprint = r.take(_FINGERPRINT_BYTES).hex()
        fields: dict[str, Any] = {}
        if flags & _HAS_META:
            fields = {f: r.string() for f in _META_STRINGS}
            fields["sample_rate"] = r.uint()
            (fields["frame_rate"],) = _F64.unpack(r.take(_F64.size))
            fields.update((f, r.uint()) for f in _META_NUMBERS[2:])
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{name}: LM-coded file has a corrupt header") from None
    stream = r.data[r.pos :]
    if fingerprint != prior_fingerprint(prior):
        raise UserError(
            f"{name}: coded with prior {fingerprint}, but the prior in use is "
            f"{prior_fingerprint(prior)}; pass the prior that wrote it"
        )
    if (fk, fv) != (k, v) or frames > MAX_FRAMES or flags & ~_HAS_META:
        raise UserError(f"{name}: header does not fit the prior ({fk} x {frames} codes of {fv})")
    if label and not 1 <= label <= prior.null_class + 1:
        raise UserError(f"{name}: class label {label - 1} is not one of the prior's")
    if not 2 <= context <= prior.config.block_size:
        raise UserError(f"{name}: context of {context} positions does not fit the prior")
    meta = None
    if flags & _HAS_META:
        try:
            meta = CodesMeta(**fields, num_codebooks=k, codebook_size=v)
            meta.check(frames)
        except (ValueError, TypeError) as e:
            raise UserError(f"{name}: corrupt metadata ({e})") from None
        if model_id is not None and meta.model_id != model_id:
            raise UserError(
                f"{name}: tokens were made by model {meta.model_id} ({meta.family}, "
                f"{meta.sample_rate} Hz) but the model in use is {model_id}; "
                "pass --model with the model that made them"
            )
    label = label - 1 if label else None
    codes = decode_codes(prior, stream, k, frames, class_label=label, context=context)
    out = codes.cpu().numpy().astype(codes_dtype(v))
    if _codes_crc(out) != codes_crc:
        raise UserError(
            f"{name}: decoded codes fail their checksum: this machine computes the prior "
            "differently from the one that wrote the file"
        )
    return out, meta


def write_lm_file(
    path: str | os.PathLike,
    codes: Any,
    prior: GPT,
    meta: CodesMeta | None = None,
    *,
    class_label: int | None = None,
    context: int | None = None,
    force: bool = False,
) -> LMCodingStats:
    """Write an LM-coded token file (see the module docstring) atomically.

    Args:
        path: destination (conventionally ``<stem>.atlm``).
        codes, prior, meta, class_label, context: see :func:`encode_lm_bytes`.
        force: replace an existing file.

    Returns:
        What the bitstream cost against the prior's cross-entropy.

    Raises:
        UserError: see :func:`encode_lm_bytes`; an existing file without ``force``; a
            folder that cannot be written.
    """
    p = check_destination(path, force)
    try:
        data, stats = encode_lm_bytes(codes, prior, meta, class_label=class_label, context=context)
    except UserError as e:
        raise UserError(f"{p}: {e}") from None
    try:
        with open_atomic(p, force=force) as f:
            f.write(data)
    except OSError as e:
        raise UserError(f"{p}: cannot write ({describe_os_error(e)})") from None
    return stats


def read_lm_file(
    path: str | os.PathLike, prior: GPT, model: Any = None
) -> tuple[np.ndarray, CodesMeta | None]:
    """Read and decode an LM-coded token file with the prior that wrote it.

    Args:
        path: an ``.atlm`` file.
        prior: the prior that wrote it (its fingerprint is checked).
        model: when given (anything with ``model_id``, e.g. an
            :class:`~audiotok.tokenizer.AudioTokenizer`), a file whose metadata names another
            tokenizer is refused, as :func:`audiotok.codes.read_codes` does.

    Returns:
        ``(codes, meta)`` as :func:`audiotok.codes.read_codes` gives them: ``codes (K, T')``
        in the smallest unsigned dtype, ``meta`` or None when the file has none.

    Raises:
        UserError: missing, truncated or corrupt file, another prior, or codes that fail
            their checksum, or codes of another tokenizer (one line naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: file not found" if not p.exists() else f"{p}: not a file")
    try:
        with open(p, "rb") as f:
            if not f.read(len(MAGIC)).startswith(MAGIC):  # before reading a large file whole
                raise UserError(f"{p}: not an LM-coded token file (no {MAGIC.decode()} magic)")
            data = MAGIC + f.read()
    except OSError as e:
        raise UserError(f"{p}: cannot read ({describe_os_error(e)})") from None
    model_id = None if model is None else str(model.model_id)
    return decode_lm_bytes(data, prior, str(p), model_id=model_id)
