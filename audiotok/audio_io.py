"""Streaming audio file I/O for the tokenizer: block reading, resampling and atomic writing.

:mod:`audiotok.tokenizer` must not import :mod:`audiotok.data` (see ARCHITECTURE.md), and a
one-hour file has to be tokenized in bounded memory, so this module reads and writes audio
in blocks instead of whole files:

* :class:`AudioReader` decodes a file with soundfile in blocks, converts the channels and
  resamples with a ``soxr.ResampleStream`` (HQ). A stream fed in blocks gives exactly the
  samples of a one-shot ``soxr.resample`` of the whole file, so streamed and in-memory
  encodings agree.
* :class:`AudioWriter` writes blocks to a temporary file next to the destination and moves
  it into place only once complete (:mod:`audiotok.atomic`: race-safe, umask respected); an
  existing file is never overwritten unless ``force``.

Headers are not trusted: a file whose sample rate lies outside :data:`SAMPLE_RATE_RANGE`
(1 kHz .. 384 kHz) is refused before anything is allocated, input blocks shrink when a low
rate is upsampled so that memory stays bounded, and a file that ends before the frame count
its header announces gives a :class:`TruncatedAudioWarning` naming both counts.

Channel rule (:func:`convert_channels`): same count -> unchanged; many -> fewer is the mean
over all channels (duplicated if the target has more than one channel); mono -> many
duplicates the channel.

Every problem with a file raises :class:`audiotok.errors.UserError` as ``"<file>: <problem>"``.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from audiotok.atomic import check_destination, commit, create_temp, describe_os_error
from audiotok.codes import SAMPLE_RATE_RANGE
from audiotok.errors import UserError

__all__ = [
    "AUDIO_EXTENSIONS",
    "SAMPLE_RATE_RANGE",
    "AudioReader",
    "AudioWriter",
    "Resampler",
    "TruncatedAudioWarning",
    "check_output_path",
    "check_sample_rate",
    "convert_channels",
    "written_by_audiotok",
]

#: ``software`` tag of the audio files :class:`AudioWriter` writes for ``audiotok decode``.
SOFTWARE_TAG = "audiotok"


class TruncatedAudioWarning(UserWarning):
    """An audio file ends before the frame count its header announces."""


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


def check_sample_rate(rate: object, what: str = "sample_rate") -> int:
    """``rate`` as an int if it is a whole number of Hz within :data:`SAMPLE_RATE_RANGE`.

    Accepts Python and numpy integers (and floats with an integral value); refuses bools,
    NaN, 0, negative and out-of-range values.

    Raises:
        UserError: naming ``what`` and the accepted range.
    """
    lo, hi = SAMPLE_RATE_RANGE
    ok = isinstance(rate, int | np.integer | float | np.floating) and not isinstance(
        rate, bool | np.bool_
    )
    if ok and not (np.isfinite(rate) and float(rate).is_integer()):  # type: ignore[arg-type]
        ok = False
    if not ok or not lo <= int(rate) <= hi:  # type: ignore[call-overload]
        raise UserError(f"{what} must be a whole number of Hz in {lo}..{hi}, got {rate!r}")
    return int(rate)  # type: ignore[call-overload]


def _wav_claimed_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE header's ``data`` chunk announces (None: not a WAV, or unknown)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, align = 12, 0
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if cid == b"fmt " and pos + 22 <= len(head):
            align = struct.unpack("<H", head[pos + 20 : pos + 22])[0]
        if cid == b"data":
            if not align or size in (0, 0xFFFFFFFF):  # streamed WAVs leave the size unknown
                return None
            return size // align
        pos += 8 + size + (size & 1)
    return None


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
        try:  # libsndfile says "System error." for these; Python names the cause
            with open(self.path, "rb"):
                pass
        except OSError as e:
            raise UserError(f"{self.path}: cannot read ({describe_os_error(e)})") from None
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as e:  # LibsndfileError, RuntimeError, TypeError ...
            raise UserError(f"{self.path}: not a readable audio file ({_first_line(e)})") from None
        self.file_sample_rate = int(self._file.samplerate)
        self.file_channels = int(self._file.channels)
        self.file_frames = int(self._file.frames)
        lo, hi = SAMPLE_RATE_RANGE
        if not lo <= self.file_sample_rate <= hi:
            self._file.close()
            raise UserError(
                f"{self.path}: sample rate {self.file_sample_rate} Hz in the header is outside "
                f"the supported {lo}..{hi} Hz"
            )
        if self.file_frames <= 0:
            self._file.close()
            raise UserError(f"{self.path}: audio file has no samples")
        #: frames the header announces (libsndfile clamps ``frames`` to the data present)
        self.header_frames = max(self.file_frames, _wav_claimed_frames(self.path) or 0)
        self.sample_rate = int(sample_rate or self.file_sample_rate)
        self.channels = int(channels or self.file_channels)
        # fewer input frames per block when upsampling or for many channels, so that a block
        # (in and out) stays near block_frames stereo frames whatever the header says
        ratio = max(1.0, self.sample_rate / self.file_sample_rate)
        wide = max(1.0, self.file_channels / 2)
        self.block_frames = max(64, int(block_frames / ratio / wide))
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
            if last and self.frames_read < self.header_frames and self._exact_frames():
                warnings.warn(
                    f"{self.path}: file is truncated: the header announces "
                    f"{self.header_frames} frames but only {self.frames_read} are present",
                    TruncatedAudioWarning,
                    stacklevel=2,
                )
            block = convert_channels(np.ascontiguousarray(data.T), self.channels)
            out = resample(block, last=last)
            if out.shape[-1]:
                yield out
            if last:
                return

    def _exact_frames(self) -> bool:
        # MP3 and Ogg headers give estimates, not counts
        return self._file.format not in ("MPEG", "OGG")

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
    """Raise ``UserError`` if ``path`` cannot be written (exists without ``force``, is a folder
    or a device); create its folder."""
    return check_destination(path, force)


def written_by_audiotok(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an audio file that :class:`AudioWriter` wrote (its ``software``
    tag), i.e. a decode output rather than a user's recording."""
    try:
        with sf.SoundFile(str(path)) as f:
            return (f.software or "").startswith(SOFTWARE_TAG + " ")
    except Exception:
        return False


class AudioWriter:
    """Write ``(C, n)`` blocks to an audio file atomically.

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``, ...); WAV and FLAC are
    16-bit PCM unless ``subtype`` says otherwise; samples are clipped to [-1, 1]. The file
    appears at ``path`` only when :meth:`close` succeeds; on an exception inside a ``with``
    block the temporary file is removed. The file's ``software`` tag says ``audiotok
    <version>``, so that ``audiotok decode`` can tell its own outputs from recordings.

    Raises:
        UserError: ``path`` exists (without ``force``) or cannot be written (a folder in the
            way, permission denied, disk full, ...).
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
        from audiotok import __version__

        self.path = Path(path)
        ext = self.path.suffix.lower().lstrip(".")
        fmt = _FORMATS.get(ext, ext.upper())
        if fmt not in sf.available_formats():
            raise UserError(f"{self.path}: cannot write audio with extension {self.path.suffix!r}")
        check_output_path(self.path, force)
        if subtype is None and fmt in ("WAV", "FLAC"):
            subtype = "PCM_16"
        if subtype is None and ext == "opus":
            subtype = "OPUS"
        self.force = force
        fd, self._tmp = create_temp(self.path)
        os.close(fd)
        self.frames_written = 0
        try:
            self._file = sf.SoundFile(
                str(self._tmp),
                "w",
                samplerate=int(sample_rate),
                channels=channels,
                subtype=subtype,
                format=fmt,
            )
            if fmt in ("WAV", "FLAC", "OGG", "AIFF"):
                self._file.software = f"{SOFTWARE_TAG} {__version__}"
        except Exception as e:
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"{self.path}: cannot write audio ({_first_line(e)})") from None

    def write(self, block: np.ndarray) -> None:
        """Append ``block: (C, n)`` float samples."""
        try:
            self._file.write(np.clip(block, -1.0, 1.0).T)
        except OSError as e:
            raise UserError(f"{self.path}: cannot write ({describe_os_error(e)})") from None
        except sf.SoundFileRuntimeError as e:
            raise UserError(f"{self.path}: cannot write audio ({_first_line(e)})") from None
        self.frames_written += block.shape[-1]

    def close(self) -> Path:
        """Finish the file and move it into place."""
        try:
            self._file.close()
        except Exception as e:
            self._tmp.unlink(missing_ok=True)
            raise UserError(f"{self.path}: cannot write audio ({_first_line(e)})") from None
        return commit(self._tmp, self.path, force=self.force)

    def abort(self) -> None:
        """Drop the temporary file; nothing is written at ``path``."""
        try:
            self._file.close()
        except Exception:
            pass
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
