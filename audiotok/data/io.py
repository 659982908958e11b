"""Reading, writing, resampling and channel/level conversion of audio files.

Everything here works on numpy arrays shaped ``(C, T)`` (channels first, float32 in [-1, 1])
so that datasets, the CLI and corpus scripts share one set of rules:

* decoding goes through soundfile (libsndfile: WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3, ...);
* every failure to get usable audio out of a file (missing, empty, corrupt, not audio,
  NaN/inf samples) raises :class:`audiotok.errors.UserError` with a one-line message that
  names the file;
* resampling uses soxr at "HQ" quality;
* channel conversion: many -> mono is the mean of the channels, mono -> many duplicates the
  channel; any other change (e.g. 6 -> 2) is refused, since there is no single right answer;
* optional level normalisation is a plain RMS target in dBFS followed by a peak limit
  (pyloudnorm / ITU-R BS.1770 gating is not available here, so this is not LUFS);
* writes are atomic: a temporary file in the destination folder, then ``os.replace``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from audiotok.audio_io import AUDIO_EXTENSIONS as AUDIO_EXTENSIONS  # one list for CLI and data
from audiotok.errors import UserError


def _name(path: str | os.PathLike | BinaryIO) -> str:
    return str(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<bytes>")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """Probe a file's header without decoding it.

    Args:
        path: audio file.

    Returns:
        ``(sample_rate, channels, frames)``; ``frames`` may be approximate for MP3.

    Raises:
        UserError: the file is missing or soundfile cannot read its header.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"audio file not found: {p}")
    try:
        info = sf.info(str(p))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise UserError(f"cannot read audio file {p}: {_short(e)}") from None
    return int(info.samplerate), int(info.channels), int(info.frames)


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def read_audio(
    path: str | os.PathLike | BinaryIO, *, start: int = 0, frames: int = -1
) -> tuple[np.ndarray, int]:
    """Decode an audio file.

    Args:
        path: file path, or a binary file object (e.g. ``io.BytesIO``) with an optional
            ``name`` used in error messages.
        start: first frame to read (seeking is exact for WAV/FLAC, decoder-dependent otherwise).
        frames: number of frames to read, ``-1`` for all.

    Returns:
        ``(wav, sample_rate)`` with ``wav: (C, T) float32``.

    Raises:
        UserError: missing, empty, unreadable/corrupt/not-audio file, or non-finite samples.
    """
    name = _name(path)
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if not p.is_file():
            raise UserError(f"audio file not found: {p}")
        if p.stat().st_size == 0:
            raise UserError(f"audio file is empty (0 bytes): {p}")
        src: str | BinaryIO = str(p)
    else:
        src = path
    try:
        data, sr = sf.read(src, start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise UserError(f"cannot decode audio file {name}: {_short(e)}") from None
    if data.shape[0] == 0:
        raise UserError(f"audio file has no samples: {name}")
    if not np.isfinite(data).all():
        raise UserError(f"audio file contains NaN or infinite samples: {name}")
    return np.ascontiguousarray(data.T), int(sr)


def read_audio_bytes(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode audio held in memory (e.g. an MP3 inside a game archive).

    Args:
        data: the encoded file's bytes.
        name: shown in error messages.

    Returns:
        ``(wav (C, T) float32, sample_rate)``.
    """
    if not data:
        raise UserError(f"audio data is empty (0 bytes): {name}")
    buf = io.BytesIO(data)
    buf.name = name  # type: ignore[attr-defined]
    return read_audio(buf)


def resample(wav: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Resample with soxr (HQ), along the last axis.

    Args:
        wav: ``(C, T)`` or ``(T,)`` float array.
        from_sr: its sample rate.
        to_sr: the wanted sample rate.

    Returns:
        float32 array of the same rank, ``T' = round(T * to_sr / from_sr)`` samples.
    """
    if from_sr <= 0 or to_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {from_sr} -> {to_sr}")
    wav = np.asarray(wav, dtype=np.float32)
    if from_sr == to_sr:
        return wav
    import soxr

    if wav.ndim == 1:
        return soxr.resample(wav, from_sr, to_sr, quality="HQ").astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(wav.T), from_sr, to_sr, quality="HQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, wav.shape[0]).T)


def to_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``(C, T)`` audio to ``channels`` channels.

    Rules: same count -> unchanged; any -> 1 is the mean over channels (a plain downmix, no
    -3 dB pan law); 1 -> n duplicates the mono channel. Other conversions raise ValueError.

    Args:
        wav: ``(C, T)`` float array.
        channels: wanted channel count (>= 1).

    Returns:
        ``(channels, T)`` float32 array.
    """
    if wav.ndim != 2:
        raise ValueError(f"expected (C, T) audio, got shape {tuple(wav.shape)}")
    c = wav.shape[0]
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if c == channels:
        return wav.astype(np.float32, copy=False)
    if channels == 1:
        return wav.mean(axis=0, keepdims=True, dtype=np.float32)
    if c == 1:
        return np.repeat(wav, channels, axis=0).astype(np.float32, copy=False)
    raise ValueError(f"cannot convert {c} channels to {channels} (only to mono or from mono)")


def normalize_level(
    wav: np.ndarray, target_db: float = -23.0, peak_db: float = -1.0, eps: float = 1e-8
) -> np.ndarray:
    """Scale audio to an RMS level in dBFS, then limit the peak.

    This is a simple stand-in for loudness normalisation (no K-weighting, no gating): the
    gain makes ``20*log10(rms) == target_db`` and is then reduced so that the absolute peak is
    at most ``peak_db``. Digital silence is returned unchanged.

    Args:
        wav: ``(..., T)`` float array.
        target_db: wanted RMS in dBFS over the whole array.
        peak_db: ceiling for the absolute peak in dBFS.
        eps: RMS below this counts as silence.

    Returns:
        float32 array of the same shape.
    """
    wav = np.asarray(wav, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    if rms < eps:
        return wav
    gain = 10.0 ** (target_db / 20.0) / rms
    peak = float(np.abs(wav).max()) * gain
    ceiling = 10.0 ** (peak_db / 20.0)
    if peak > ceiling:
        gain *= ceiling / peak
    return (wav * gain).astype(np.float32)


def write_audio(
    path: str | os.PathLike, wav: np.ndarray, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write audio atomically (temporary file in the same folder, then ``os.replace``).

    The format comes from the extension (``.wav``, ``.flac``, ``.ogg``, ...). Samples are
    clipped to [-1, 1]; the default subtype is 16-bit PCM for WAV/FLAC.

    Args:
        path: destination file; its folder is created if needed.
        wav: ``(C, T)`` or ``(T,)`` float array.
        sample_rate: in Hz.
        subtype: soundfile subtype (e.g. ``"PCM_24"``, ``"FLOAT"``), or None for the default.

    Returns:
        The destination path.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise ValueError(f"expected (C, T) audio, got shape {tuple(wav.shape)}")
    data = np.clip(wav, -1.0, 1.0).T
    fmt = sf.available_formats()
    ext = p.suffix.lower().lstrip(".")
    fmt_name = {"oga": "OGG", "opus": "OGG", "aif": "AIFF"}.get(ext, ext.upper())
    if fmt_name not in fmt:
        raise UserError(f"cannot write audio with extension {p.suffix!r}: {p}")
    if subtype is None and fmt_name in {"WAV", "FLAC"}:
        subtype = "PCM_16"
    if subtype is None and ext == "opus":
        subtype = "OPUS"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        sf.write(tmp, data, int(sample_rate), subtype=subtype, format=fmt_name)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    channels: int | None = None,
    level_db: float | None = None,
) -> np.ndarray:
    """Read a file and bring it to a sample rate / channel count / level in one call.

    Args:
        path: audio file.
        sample_rate: target rate, or None to keep the file's.
        channels: target channel count, or None to keep the file's.
        level_db: RMS target for :func:`normalize_level`, or None to keep the level.

    Returns:
        ``(C, T) float32``.
    """
    wav, sr = read_audio(path)
    if channels is not None:
        wav = to_channels(wav, channels)  # before resampling: fewer channels to resample
    if sample_rate is not None:
        wav = resample(wav, sr, sample_rate)
    if level_db is not None:
        wav = normalize_level(wav, level_db)
    return wav
