"""Checks on what users pass to the tokenizer: arrays, lengths, codes, channels.

Each check turns a bad value into a :class:`~audiotok.errors.UserError` with a one-line
message naming the value, so that the CLI and Python users see the same words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiotok.audio_io import Resampler, convert_channels
from audiotok.errors import UserError

__all__ = [
    "as_array",
    "whole",
    "encode_lengths",
    "prepare_audio",
    "decode_lengths",
    "as_codes",
    "check_code_range",
    "check_channels",
    "file_lengths",
    "select_codebooks",
]


def whole(n: Any) -> int:
    """``n`` as an int if it is an integer (Python, numpy or a 0-d integer tensor).

    Raises:
        TypeError: anything else (bools included).
    """
    if isinstance(n, Tensor) and n.dim() == 0 and not n.is_floating_point():
        n = n.item()
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(n)
    return int(n)


def as_array(x: Any, what: str, *, floating: bool) -> np.ndarray:
    """A numpy view of a tensor or array, with a dtype check (float or integer ``what``)."""
    if isinstance(x, Tensor):
        x = x.detach().cpu()
        x = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        x = x.numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists, odd objects
        raise UserError(f"expected {what} as an array, got {type(x).__name__} ({e})") from None
    if floating and arr.dtype.kind != "f":
        raise UserError(f"expected float {what}, got dtype {arr.dtype}")
    if not floating and arr.dtype.kind not in "ui":
        raise UserError(f"expected integer {what}, got dtype {arr.dtype}")
    return arr


def encode_lengths(lengths: Sequence[int] | Tensor | None, shape: tuple[int, ...]) -> list[int]:
    """Valid samples per item of audio ``(B, C, T)`` of ``shape``: ``lengths`` or all ``T``.

    Raises:
        UserError: not one int in ``1..T`` per item.
    """
    try:
        lens = [shape[-1]] * shape[0] if lengths is None else [whole(n) for n in lengths]
    except TypeError:
        raise UserError(f"lengths must be ints, one per item, got {lengths!r}") from None
    if len(lens) != shape[0] or not all(1 <= n <= shape[-1] for n in lens):
        raise UserError(f"lengths {lens} do not fit audio of shape {tuple(shape)}")
    return lens


def prepare_audio(
    wav: Any,
    sample_rate: int,
    lengths: Sequence[int] | Tensor | None,
    model_rate: int,
    channels: int,
) -> list[np.ndarray]:
    """User audio as one float32 ``(channels, T_b)`` array per item at ``model_rate``.

    Args:
        wav: float numpy array or tensor, ``(T,)``, ``(C, T)`` or ``(B, C, T)``.
        sample_rate: its rate in Hz (already checked); resampled with soxr.
        lengths: valid samples of each item (default: all ``T``); the rest is dropped.
        model_rate, channels: what the model takes (the channel rule of
            :func:`audiotok.audio_io.convert_channels`).

    Raises:
        UserError: bad dtype, shape, lengths, or NaN/inf samples.
    """
    x = as_array(wav, "audio", floating=True)
    x = x[None, None] if x.ndim == 1 else x[None] if x.ndim == 2 else x  # (B, C, T)
    if x.ndim != 3 or x.shape[-1] < 1 or x.shape[0] < 1 or x.shape[1] < 1:
        raise UserError(f"expected audio (T,), (C, T) or (B, C, T), got shape {x.shape}")
    sources = []
    for item, n in zip(x, encode_lengths(lengths, x.shape), strict=True):
        if not np.isfinite(item[:, :n]).all():
            raise UserError("audio contains NaN or infinite samples")
        y = convert_channels(item[:, :n].astype(np.float32), channels)
        sources.append(np.ascontiguousarray(Resampler(sample_rate, model_rate, channels)(y, True)))
    return sources


def decode_lengths(length: int | Sequence[int] | None, batch: int, full: int) -> list[int]:
    """Samples per item to decode from ``batch`` items of ``full`` samples of codes.

    Args:
        length: one int for every item, one per item, or ``None`` (all ``full``).

    Raises:
        UserError: not an int (or one per item) in ``0..full``.
    """
    try:
        if length is None:
            lens = [full] * batch
        elif isinstance(length, int | np.integer) and not isinstance(length, bool):
            lens = [int(length)] * batch
        else:
            lens = [whole(n) for n in length]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise UserError(f"length must be an int or one int per item, got {length!r}") from None
    if len(lens) != batch or not all(0 <= n <= full for n in lens):
        raise UserError(f"length {length} does not fit {full} samples of codes")
    return lens


def as_codes(codes: Any) -> Tensor:
    """Codes ``(K, T')`` or ``(B, K, T')`` of any integer type as ``(B, K, T')`` long.

    Raises:
        UserError: not integers, or another shape.
    """
    c = torch.from_numpy(as_array(codes, "codes", floating=False).astype(np.int64))
    c = c[None] if c.dim() == 2 else c
    if c.dim() != 3 or c.shape[-1] < 1 or c.shape[0] < 1:
        raise UserError(f"expected codes (K, T') or (B, K, T'), got shape {tuple(c.shape)}")
    return c


def check_code_range(codes: Tensor, codebook_size: int) -> None:
    """Every code in ``[0, codebook_size)`` (the one validator,
    :func:`audiotok.quantize.base.check_codes`, in the project's error type).

    Raises:
        UserError: a code outside, with the smallest and largest code.
    """
    from audiotok.quantize.base import check_codes

    try:
        check_codes(codes, layout=("B", "k", "T'"), codebook_size=codebook_size)
    except ValueError as e:
        raise UserError(str(e)) from None


def check_channels(channels: Any) -> int:
    """An output channel count: an int in 1..64.

    Raises:
        UserError: anything else.
    """
    if isinstance(channels, bool) or not isinstance(channels, int | np.integer):
        raise UserError(f"channels must be an int in 1..64, got {channels!r}")
    if not 1 <= channels <= 64:
        raise UserError(f"channels must be an int in 1..64, got {channels!r}")
    return int(channels)


def file_lengths(length: Any, frames: int, hop: int, rate: int, out_rate: int) -> tuple[int, int]:
    """Samples to decode and to write when ``frames`` code frames go to a file.

    Args:
        length: samples wanted at ``out_rate``, an int in ``1..`` one frame more than the
            codes hold; ``None``: all decoded samples.
        frames: code frames, ``hop`` samples each at the model's ``rate``.
        out_rate: the file's rate in Hz.

    Returns:
        ``(samples at rate, samples at out_rate)``.

    Raises:
        UserError: a ``length`` that is not such an int.
    """
    model_len = frames * hop
    most = math.ceil((model_len + hop) * out_rate / rate)
    if length is not None and (
        isinstance(length, bool)
        or not isinstance(length, int | np.integer)
        or not 1 <= length <= most
    ):
        raise UserError(
            f"length {length} does not fit {frames} code frames ({most} samples at "
            f"{out_rate} Hz at most)"
        )
    if length is None:
        return model_len, round(model_len * out_rate / rate)
    return min(model_len, round(length * rate / out_rate)), int(length)


def select_codebooks(
    ladder: list[float],
    full: int,
    partial: bool,
    *,
    num_codebooks: int | None = None,
    bitrate: float | None = None,
) -> int:
    """Codebooks to use: ``num_codebooks``, or those of the ladder rung ``bitrate``, or all.

    Args:
        ladder: the model's bitrates in kbps, ascending (entry ``k - 1``: the first ``k``
            codebooks; one entry for a model that needs all codebooks).
        full: K, the model's codebooks.
        partial: whether the model can use fewer than K codebooks.
        num_codebooks, bitrate: what the user asked for (at most one of them). ``bitrate``
            must be on the ladder (to 0.5 %, so that the printed ``0.862`` selects
            ``0.8613...``); 6000 (bits per second) is an error, not "the most that fit".

    Raises:
        UserError: both given, or a value the model cannot serve (the message lists the
            valid bitrates).
    """
    if num_codebooks is not None and bitrate is not None:
        raise UserError("give a bitrate or a number of codebooks, not both")
    if bitrate is not None:
        avail = ", ".join(f"{b:g}" for b in ladder)
        ok = isinstance(bitrate, int | float | np.integer | np.floating) and not isinstance(
            bitrate, bool | np.bool_
        )
        match = [k for k, b in enumerate(ladder, 1) if ok and abs(bitrate - b) <= 0.005 * b]
        if not match:
            raise UserError(
                f"bitrate {bitrate!r} kbps is not available; valid bitrates: {avail} kbps"
            )
        return full if len(ladder) == 1 else match[0]
    if num_codebooks is None:
        return full
    if isinstance(num_codebooks, np.integer):
        num_codebooks = int(num_codebooks)
    if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int):
        raise UserError(f"num_codebooks must be an int, got {num_codebooks!r}")
    if not 1 <= num_codebooks <= full:
        raise UserError(f"num_codebooks must be in [1, {full}], got {num_codebooks}")
    if num_codebooks != full and not partial:
        raise UserError(f"this model needs all {full} codebooks")
    return num_codebooks
