"""Audio files in and out: the one home of reading, resampling, channels and writing.

Why one file of ~600 lines (issue 10): the tokenizer, datasets, eval and corpus scripts used
to carry two I/O stacks whose rules drifted apart; every rule lives here so they stay one.
Arrays are ``(C, T)`` float32 in [-1, 1], channels first.

* **Reading.** Every reader opens a file through the same checks (:func:`_open`): a missing,
  empty, unreadable or non-audio file, a header rate outside :data:`SAMPLE_RATE_RANGE`
  (1 kHz .. 384 kHz, refused before anything is allocated) and a file without samples raise
  :class:`AudioFileError`; so do NaN/inf samples. :class:`AudioReader` decodes in blocks
  (bounded memory whatever the header says; a :class:`TruncatedAudioWarning` naming both
  counts when a file ends before the frames its header announces); :func:`read_audio` reads
  a whole file or a window of a path or file object; :func:`audio_info` reads the header.
* **Resampling** is soxr "HQ". :func:`resample` is a :class:`Resampler` stream fed everything
  at once: exactly the samples of a one-shot ``soxr.resample``, and of the same stream fed
  in blocks, so streamed and in-memory paths agree.
* **The channel rule** (:func:`convert_channels`, exported as :func:`to_channels` too): the
  same count is kept; otherwise every output channel is the mean of all input channels. Many
  -> fewer is a plain downmix (5.1 -> stereo: the mean in both), mono -> many duplicates.
* **Writing** (:class:`AudioWriter`, :func:`write_audio`) goes through :mod:`audiotok.atomic`:
  a hidden temporary file moved into place when complete, exclusive create unless ``force``,
  the umask's mode.
* :func:`normalize_level`: a plain RMS target in dBFS and a peak limit (not LUFS).

A problem with a file is one line, ``"<file>: <problem>"`` (:class:`AudioFileError`, a
:class:`~audiotok.errors.UserError`), with libsndfile's text reduced to its reason.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import soundfile as sf

from audiotok.atomic import check_destination, commit, create_temp, describe_os_error
from audiotok.codes import SAMPLE_RATE_RANGE
from audiotok.errors import UserError

__all__ = [
    "AUDIO_EXTENSIONS",
    "SAMPLE_RATE_RANGE",
    "AudioFileError",
    "AudioReader",
    "AudioWriter",
    "Resampler",
    "TruncatedAudioWarning",
    "audio_info",
    "check_output_path",
    "check_sample_rate",
    "convert_channels",
    "load_audio",
    "normalize_level",
    "read_audio",
    "read_audio_bytes",
    "resample",
    "to_channels",
    "write_audio",
    "written_by_audiotok",
]

#: ``software`` tag of the audio files :class:`AudioWriter` writes for ``audiotok decode``.
SOFTWARE_TAG = "audiotok"

#: Extensions listed when a folder is scanned for audio (lower case, with the dot).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}
)

#: libsndfile's format for the extensions whose upper-cased name is not the format's.
_FORMATS = {"oga": "OGG", "opus": "OGG", "aif": "AIFF"}

AudioSource = str | os.PathLike | BinaryIO


class AudioFileError(UserError):
    """A problem with one audio file: ``str()`` is ``"<file>: <problem>"``; ``path`` and
    ``problem`` are kept apart for messages that name the file themselves."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # DataLoader workers pickle errors
        return type(self), (self.path, self.problem)


class TruncatedAudioWarning(UserWarning):
    """An audio file ends before the frame count its header announces."""


def _reason(e: BaseException, src: object = None) -> str:
    """The first line of ``e`` without libsndfile's ``Error opening <src>: `` prefix."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    prefix = f"Error opening {src!r}: "
    return line[len(prefix) :] if src is not None and line.startswith(prefix) else line


def _name(src: AudioSource) -> str:
    return str(src) if isinstance(src, str | os.PathLike) else getattr(src, "name", "<bytes>")


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


# ---- reading --------------------------------------------------------------------------------


def _open(src: AudioSource) -> sf.SoundFile:
    """Open ``src`` for reading after the checks every reader shares.

    Raises:
        AudioFileError: missing, not a file, empty, unreadable, not audio, a header rate
            outside :data:`SAMPLE_RATE_RANGE`, or no samples.
    """
    name = _name(src)
    if isinstance(src, str | os.PathLike):
        p = Path(src)
        if not p.exists():
            raise AudioFileError(p, "file not found")
        if not p.is_file():
            raise AudioFileError(p, "not a file")
        if p.stat().st_size == 0:
            raise AudioFileError(p, "file is empty (0 bytes)")
        try:  # libsndfile says "System error." for these; Python names the cause
            with open(p, "rb"):
                pass
        except OSError as e:
            raise AudioFileError(p, f"cannot read ({describe_os_error(e)})") from None
        src = str(p)
    try:
        f = sf.SoundFile(src)
    except Exception as e:  # LibsndfileError, RuntimeError, TypeError ...
        raise AudioFileError(name, f"not a readable audio file ({_reason(e, src)})") from None
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= f.samplerate <= hi:
        f.close()
        raise AudioFileError(
            name,
            f"sample rate {f.samplerate} Hz in the header is outside the supported {lo}..{hi} Hz",
        )
    if f.frames <= 0:
        f.close()
        raise AudioFileError(name, "audio file has no samples")
    return f


def _check_finite(data: np.ndarray, name: str) -> None:
    if not np.isfinite(data).all():
        raise AudioFileError(name, "audio contains NaN or infinite samples")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` from the header (``frames`` is approximate for MP3).

    Raises:
        AudioFileError: see :func:`_open`.
    """
    with _open(path) as f:
        return int(f.samplerate), int(f.channels), int(f.frames)


def read_audio(src: AudioSource, *, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Decode a whole audio file, or ``frames`` frames of it from ``start``.

    Args:
        src: file path, or a binary file object (e.g. ``io.BytesIO``) whose optional
            ``name`` is used in error messages.
        start: first frame to read (seeking is exact for WAV/FLAC, decoder-dependent otherwise).
        frames: number of frames to read, ``-1`` for all.

    Returns:
        ``(wav, sample_rate)`` with ``wav: (C, T) float32``.

    Raises:
        AudioFileError: see :func:`_open`; also no samples read, or NaN/inf samples.
    """
    name = _name(src)
    with _open(src) as f:
        start = slice(start, None).indices(f.frames)[0]  # as soundfile.read does
        try:
            if f.seekable():  # also to 0: libsndfile's MP3 decoder then matches soundfile.read
                f.seek(start)
            data = f.read(frames, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioFileError(name, f"cannot decode audio ({_reason(e)})") from None
        rate = int(f.samplerate)
    if data.shape[0] == 0:
        raise AudioFileError(name, "audio file has no samples")
    _check_finite(data, name)
    return np.ascontiguousarray(data.T), rate


def read_audio_bytes(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode audio held in memory (e.g. an MP3 inside a game archive).

    ``name`` is shown in error messages; returns ``(wav (C, T) float32, sample_rate)``.
    """
    if not data:
        raise AudioFileError(name, "file is empty (0 bytes)")
    buf = io.BytesIO(data)
    buf.name = name  # type: ignore[attr-defined]
    return read_audio(buf)


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


class AudioReader(AbstractContextManager["AudioReader"]):
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
        AudioFileError: on open, for a missing, empty or unreadable file or one without
            samples; while iterating, on a decoding error or NaN/inf samples.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int | None = None,
        channels: int | None = None,
        block_frames: int = 1 << 16,
    ) -> None:
        self.path = Path(path)
        self._file = _open(self.path)
        self.file_sample_rate = int(self._file.samplerate)
        self.file_channels = int(self._file.channels)
        self.file_frames = int(self._file.frames)
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
                raise AudioFileError(self.path, f"cannot decode audio ({_reason(e)})") from None
            last = data.shape[0] < self.block_frames
            if data.shape[0]:
                _check_finite(data, str(self.path))
            self.frames_read += data.shape[0]
            if last and self.frames_read == 0:
                raise AudioFileError(self.path, "audio file has no samples")
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

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ---- resampling, channels, level ------------------------------------------------------------


class Resampler:
    """Block resampler over ``(C, n)`` float32 blocks (identity when the rates agree); a rate
    that is not positive is a ``ValueError``."""

    def __init__(self, from_rate: int, to_rate: int, channels: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
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


def resample(wav: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Resample along the last axis in one go (a :class:`Resampler` flushed at once).

    Args:
        wav: ``(C, T)`` or ``(T,)`` float array.
        from_sr: its sample rate.
        to_sr: the wanted sample rate.

    Returns:
        float32 array of the same rank, ``T' = round(T * to_sr / from_sr)`` samples.

    Raises:
        ValueError: a rate that is not positive.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        return resample(wav[None], from_sr, to_sr)[0]
    return Resampler(from_sr, to_sr, wav.shape[0])(wav, last=True)


def convert_channels(wav: np.ndarray, channels: int) -> np.ndarray:
    """Bring ``wav: (C, T)`` to ``(channels, T)`` float32 by the one channel rule.

    The same count is kept; otherwise every output channel is the mean of all input channels
    (no -3 dB pan law): 5.1 -> stereo has the mean of the six in both, mono -> many duplicates.

    Raises:
        ValueError: ``wav`` is not 2-D, or ``channels`` < 1.
    """
    if wav.ndim != 2:
        raise ValueError(f"expected (C, T) audio, got shape {tuple(wav.shape)}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if wav.shape[0] == channels:
        return wav.astype(np.float32, copy=False)
    if wav.shape[0] > 1:
        wav = wav.mean(axis=0, keepdims=True, dtype=np.float32)
    return np.repeat(wav, channels, axis=0).astype(np.float32, copy=False)


#: The name :mod:`audiotok.data` exports for :func:`convert_channels` (the same function).
to_channels = convert_channels


def normalize_level(
    wav: np.ndarray, target_db: float = -23.0, peak_db: float = -1.0, eps: float = 1e-8
) -> np.ndarray:
    """Scale ``wav: (..., T)`` to an RMS of ``target_db`` dBFS, then limit its peak to ``peak_db``.

    A simple stand-in for loudness normalisation (no K-weighting, no gating); an RMS below
    ``eps`` (digital silence) is returned unchanged. Returns float32 of the same shape.
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


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    channels: int | None = None,
    level_db: float | None = None,
) -> np.ndarray:
    """:func:`read_audio`, then channels, rate and RMS level (each None: kept): ``(C, T)``."""
    wav, sr = read_audio(path)
    if channels is not None:
        wav = convert_channels(wav, channels)  # before resampling: fewer channels to resample
    if sample_rate is not None:
        wav = resample(wav, sr, sample_rate)
    if level_db is not None:
        wav = normalize_level(wav, level_db)
    return wav


# ---- writing --------------------------------------------------------------------------------


#: Raise ``UserError`` if a path cannot be written (exists without ``force``, is a folder or a
#: device); create its folder.
check_output_path = check_destination


def written_by_audiotok(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an audio file that :class:`AudioWriter` wrote (its ``software``
    tag), i.e. a decode output rather than a user's recording."""
    try:
        with sf.SoundFile(str(path)) as f:
            return (f.software or "").startswith(SOFTWARE_TAG + " ")
    except Exception:
        return False


class AudioWriter(AbstractContextManager["AudioWriter"]):
    """Write ``(C, n)`` blocks to an audio file atomically.

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``, ...); WAV and FLAC are
    16-bit PCM unless ``subtype`` says otherwise; samples are clipped to [-1, 1]. The file
    appears at ``path`` only when :meth:`close` succeeds; on an exception inside a ``with``
    block the temporary file is removed.

    Args:
        path: destination; its folder is created.
        sample_rate: in Hz.
        channels: channels of the blocks written.
        force: replace an existing file (else it is never overwritten, also under races).
        subtype: soundfile subtype (e.g. ``"PCM_24"``, ``"FLOAT"``), or None for the default.
        tag: set the ``software`` tag to ``audiotok <version>``, which marks a decode output
            (:func:`written_by_audiotok`) that a later decode may replace; leave it off for
            files that stand for a user's recording (corpus copies).

    Raises:
        AudioFileError: ``path`` exists (without ``force``) or cannot be written (a folder in
            the way, permission denied, disk full, an unknown extension, ...).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: int,
        channels: int,
        *,
        force: bool = False,
        subtype: str | None = None,
        tag: bool = True,
    ) -> None:
        from audiotok import __version__

        self.path = Path(path)
        ext = self.path.suffix.lower().lstrip(".")
        fmt = _FORMATS.get(ext, ext.upper())
        if fmt not in sf.available_formats():
            raise AudioFileError(
                self.path, f"cannot write audio with extension {self.path.suffix!r}"
            )
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
            if tag and fmt in ("WAV", "FLAC", "OGG", "AIFF"):
                self._file.software = f"{SOFTWARE_TAG} {__version__}"
        except Exception as e:
            self._tmp.unlink(missing_ok=True)
            raise AudioFileError(self.path, f"cannot write audio ({_reason(e)})") from None

    def write(self, block: np.ndarray) -> None:
        """Append ``block: (C, n)`` float samples."""
        try:
            self._file.write(np.clip(block, -1.0, 1.0).T)
        except OSError as e:
            raise AudioFileError(self.path, f"cannot write ({describe_os_error(e)})") from None
        except sf.SoundFileRuntimeError as e:
            raise AudioFileError(self.path, f"cannot write audio ({_reason(e)})") from None
        self.frames_written += block.shape[-1]

    def close(self) -> Path:
        """Finish the file and move it into place."""
        try:
            self._file.close()
        except Exception as e:
            self._tmp.unlink(missing_ok=True)
            raise AudioFileError(self.path, f"cannot write audio ({_reason(e)})") from None
        return commit(self._tmp, self.path, force=self.force)

    def abort(self) -> None:
        """Drop the temporary file; nothing is written at ``path``."""
        try:
            self._file.close()
        except Exception:
            pass
        self._tmp.unlink(missing_ok=True)

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()


def write_audio(
    path: str | os.PathLike, wav: np.ndarray, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write ``wav: (C, T)`` or ``(T,)`` with :class:`AudioWriter`, replacing ``path``.

    The file carries no ``software`` tag: it is data (a corpus file, a training sample), not a
    decode output that ``audiotok decode`` may replace. Returns ``path``.

    Raises:
        ValueError: ``wav`` is neither 1-D nor 2-D.
        AudioFileError: the file cannot be written.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise ValueError(f"expected (C, T) audio, got shape {tuple(wav.shape)}")
    writer = AudioWriter(path, sample_rate, wav.shape[0], force=True, subtype=subtype, tag=False)
    with writer:
        writer.write(wav)
    return Path(path)
