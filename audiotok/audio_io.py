"""Streaming audio file I/O for the tokenizer: block reading, resampling and atomic writing.

:mod:`audiotok.tokenizer` must not import :mod:`audiotok.data` (see ARCHITECTURE.md), and a
one-hour file has to be tokenized in bounded memory, so this module reads and writes audio
in blocks instead of whole files:

* :class:`AudioReader` decodes a file with soundfile in blocks, converts the channels and
  resamples with a ``soxr.ResampleStream`` (HQ). A stream fed in blocks gives exactly the
  samples of a one-shot ``soxr.resample`` of the whole file, so streamed and in-memory
  encodings agree.
* :class:`AudioWriter` writes blocks to a temporary file next to the destination and moves
  it into place with ``os.replace`` only once complete; an existing file is never
  overwritten unless ``force``.

Channel rule (:func:`convert_channels`): same count -> unchanged; many -> fewer is the mean
over all channels (duplicated if the target has more than one channel); mono -> many
duplicates the channel.

Every problem with a file raises :class:`audiotok.errors.UserError` as ``"<file>: <problem>"``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from audiotok.errors import UserError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioReader",
    "AudioWriter",
    "Resampler",
    "convert_channels",
    "check_output_path",
]

#: Extensions listed when a folder is scanned for audio (lower case, with the dot).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}
)

_FORMATS = {"oga": "OGG", "opus": "OGG", "aif": "AIFF"}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    # libsndfile says "Error opening '<path>': <why>"; the path is already in our message
    return line.split("': ", 1)[1] if line.startswith("Error opening '") and "': " in line else line


def convert_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``wav: (C, T)`` to ``(channels, T)`` float32 by the module's channel rule."""
    c = wav.shape[0]
    if c == channels:
        return wav.astype(np.float32, copy=False)
    if c > channels:
        mono = wav.mean(axis=0, keepdims=True, dtype=np.float32)
        return np.repeat(mono, channels, axis=0) if channels > 1 else mono
    return np.repeat(wav[:1], channels, axis=0).astype(np.float32, copy=False)


class Resampler:
    """Block resampler over ``(C, n)`` float32 blocks (identity when the rates agree)."""

    def __init__(self, from_rate: int, to_rate: int, channels: int) -> None:
        self.from_rate, self.to_rate, self.channels = int(from_rate), int(to_rate), channels
        self._stream = None
        if self.from_rate != self.to_rate:
            import soxr

            self._stream = soxr.ResampleStream(
                self.from_rate, self.to_rate, channels, dtype="float32", quality="HQ"
            )

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample ``block: (C, n)``; pass ``last=True`` with the final block to flush."""
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, self.channels).T)


class AudioReader:
    """Read an audio file in blocks at a target sample rate and channel count.

    Args:
        path: the audio file.
        sample_rate: rate of the blocks produced (``None``: the file's).
        channels: channels of the blocks produced (``None``: the file's).
        block_frames: input frames decoded per block.

    Attributes:
        file_sample_rate, file_channels, file_frames: the file's header values
            (``file_frames`` may be approximate for MP3).

    Raises:
        UserError: on open, for a missing, empty or unreadable file or one without samples;
            while iterating, on a decoding error or NaN/inf samples.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int | None = None,
        channels: int | None = None,
        block_frames: int = 1 << 16,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: file not found")
        if not self.path.is_file():
            raise UserError(f"{self.path}: not a file")
        if self.path.stat().st_size == 0:
            raise UserError(f"{self.path}: file is empty (0 bytes)")
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:  # LibsndfileError, RuntimeError, TypeError ...
            raise UserError(f"{self.path}: not a readable audio file ({_first_line(e)})") from None
        self.file_sample_rate = int(self._file.samplerate)
        self.file_channels = int(self._file.channels)
        self.file_frames = int(self._file.frames)
        if self.file_frames <= 0:
            self._file.close()
            raise UserError(f"{self.path}: audio file has no samples")
        self.sample_rate = int(sample_rate or self.file_sample_rate)
        self.channels = int(channels or self.file_channels)
        self.block_frames = int(block_frames)
        self.frames_read = 0

    def expected_frames(self) -> int:
        """Estimated number of output frames (exact for WAV/FLAC at equal rates)."""
        return round(self.file_frames * self.sample_rate / self.file_sample_rate)

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield ``(channels, n)`` float32 blocks at ``sample_rate`` until the file ends."""
        resample = Resampler(self.file_sample_rate, self.sample_rate, self.channels)
        while True:
            try:
                data = self._file.read(self.block_frames, dtype="float32", always_2d=True)
            except Exception as e:
                raise UserError(f"{self.path}: cannot decode audio ({_first_line(e)})") from None
            last = data.shape[0] < self.block_frames
            if data.shape[0] and not np.isfinite(data).all():
                raise UserError(f"{self.path}: audio contains NaN or infinite samples")
            self.frames_read += data.shape[0]
            if last and self.frames_read == 0:
                raise UserError(f"{self.path}: audio file has no samples")
            block = convert_channels(np.ascontiguousarray(data.T), self.channels)
            out = resample(block, last=last)
            if out.shape[-1]:
                yield out
            if last:
                return

    def read_all(self) -> np.ndarray:
        """The whole file as one ``(channels, T)`` float32 array."""
        parts = list(self.blocks())
        return np.concatenate(parts, axis=-1)

    def close(self) -> None:
        """Close the underlying file."""
        self._file.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Raise ``UserError`` if ``path`` exists and ``force`` is false; create its folder."""
    p = Path(path)
    if p.exists() and not force:
        raise UserError(f"{p}: output already exists (use --force to overwrite)")
    if p.is_dir():
        raise UserError(f"{p}: output is a directory")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


class AudioWriter:
    """Write ``(C, n)`` blocks to an audio file atomically.

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``, ...); WAV and FLAC are
    16-bit PCM unless ``subtype`` says otherwise; samples are clipped to [-1, 1]. The file
    appears at ``path`` only when :meth:`close` succeeds; on an exception inside a ``with``
    block the temporary file is removed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int,
        channels: int,
        *,
        force: bool = False,
        subtype: str | None = None,
    ) -> None:
        self.path = check_output_path(path, force)
        ext = self.path.suffix.lower().lstrip(".")
        fmt = _FORMATS.get(ext, ext.upper())
        if fmt not in sf.available_formats():
            raise UserError(f"{self.path}: cannot write audio with extension {self.path.suffix!r}")
        if subtype is None and fmt in ("WAV", "FLAC"):
            subtype = "PCM_16"
        if subtype is None and ext == "opus":
            subtype = "OPUS"
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        self.frames_written = 0
        try:
            self._file = sf.SoundFile(
                tmp,
                "w",
                samplerate=int(sample_rate),
                channels=channels,
                subtype=subtype,
                format=fmt,
            )
        except Exception as e:
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"{self.path}: cannot write audio ({_first_line(e)})") from None

    def write(self, block: np.ndarray) -> None:
        """Append ``block: (C, n)`` float samples."""
        self._file.write(np.clip(block, -1.0, 1.0).T)
        self.frames_written += block.shape[-1]

    def close(self) -> Path:
        """Finish the file and move it into place."""
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; nothing is written at ``path``."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()
