"""Opus (RFC 6716) round trips at a given bitrate: the classical codec a tokenizer must beat.

``opus_roundtrip`` encodes a signal with the reference encoder and decodes it back so that
an evaluation can put the same metrics on a tokenizer and on Opus at the same bitrate.

How the round trip is done, and why:

* Opus runs internally at 48 kHz. Rather than letting ``opusenc``/``opusdec`` resample
  (each with its own filter and delay handling), the signal is resampled here with soxr
  (linear phase, delay compensated) to 48 kHz and back, so the output is sample-aligned with
  the input by construction.
* Encoding uses ``opusenc`` (opus-tools) in its default VBR mode unless ``mode`` says
  otherwise (``"cvbr"``: constrained VBR, ``"cbr"``: ``--hard-cbr``). VBR is what people
  use in practice and what published comparisons quote; ``--bitrate`` is the *total*
  bitrate of the stream (all channels), the same meaning as a tokenizer's bitrate.
  Opus accepts 6 to 256 kbit/s per channel; lower requests are raised to 6 kbit/s.
* Decoding uses ``opusdec --rate 48000 --float``. The Ogg Opus stream carries the encoder's
  pre-skip and the exact end position, and ``opusdec`` trims both, so the decoded signal has
  the input's length; a final trim/zero-pad guards against off-by-a-few rounding.
* Without opus-tools, ``ffmpeg`` with ``libopus`` is used when present (``-vbr on|constrained
  |off``); without either, :func:`opus_available` is False and callers skip Opus.

The reported actual bitrate (:attr:`OpusResult.actual_kbps`) is the Ogg file size over the
duration, so it includes the container overhead (headers are kept minimal: no padding, no
comments).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from audiotok.audio_io import resample

OPUS_RATE = 48_000
MIN_KBPS_PER_CHANNEL = 6.0
MAX_KBPS_PER_CHANNEL = 256.0

Mode = Literal["vbr", "cvbr", "cbr"]


@dataclass(frozen=True)
class OpusResult:
    """The decoded signal and what the stream cost.

    Attributes:
        audio: ``(C, T)`` float32, same rate and length as the input.
        bitrate_kbps: the bitrate asked of the encoder (after clamping to Opus' range).
        actual_kbps: Ogg file size in kbit over the duration (container overhead included).
        backend: ``"opus-tools"`` or ``"ffmpeg"``.
    """

    audio: np.ndarray
    bitrate_kbps: float
    actual_kbps: float
    backend: str


def _backend() -> str | None:
    if shutil.which("opusenc") and shutil.which("opusdec"):
        return "opus-tools"
    if shutil.which("ffmpeg") and _ffmpeg_has_libopus():
        return "ffmpeg"
    return None


def _ffmpeg_has_libopus() -> bool:
    try:
        out = subprocess.run(
            ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "libopus" in out.stdout


def opus_available() -> bool:
    """True when an Opus encoder/decoder is installed (opus-tools, else ffmpeg + libopus)."""
    return _backend() is not None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {msg[-1] if msg else ''}")


def _encode_decode(src: Path, enc: Path, dec: Path, kbps: float, mode: Mode, backend: str) -> None:
    if backend == "opus-tools":
        flag = {"vbr": [], "cvbr": ["--cvbr"], "cbr": ["--hard-cbr"]}[mode]
        _run(
            ["opusenc", "--quiet", "--bitrate", f"{kbps:g}", *flag, "--padding", "0"]
            + ["--discard-comments", str(src), str(enc)]
        )
        _run(["opusdec", "--quiet", "--rate", str(OPUS_RATE), "--float", str(enc), str(dec)])
        return
    vbr = {"vbr": "on", "cvbr": "constrained", "cbr": "off"}[mode]
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    _run(
        base
        + ["-i", str(src), "-c:a", "libopus", "-b:a", f"{kbps * 1000:.0f}", "-vbr", vbr]
        + ["-map_metadata", "-1", str(enc)]
    )
    _run(base + ["-i", str(enc), "-ar", str(OPUS_RATE), "-c:a", "pcm_f32le", str(dec)])


def _fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return np.pad(wav, [(0, 0), (0, length - wav.shape[-1])])


def opus_encode_decode(
    wav: np.ndarray, sample_rate: int, bitrate_kbps: float, *, mode: Mode = "vbr"
) -> OpusResult:
    """Round-trip audio through Opus and report the bitrate it actually used.

    Args:
        wav: ``(C, T)`` float audio in [-1, 1] (``(T,)`` is taken as mono). At most 8
            channels (Opus' channel-mapping family 1 limit).
        sample_rate: rate of ``wav`` in Hz; the result has the same rate.
        bitrate_kbps: total target bitrate in kbit/s; clamped to 6-256 kbit/s per channel.
        mode: ``"vbr"`` (default, opusenc's default), ``"cvbr"`` or ``"cbr"``.

    Returns:
        :class:`OpusResult` with ``audio: (C, T)`` float32, aligned with ``wav``.

    Raises:
        RuntimeError: no Opus backend is installed, or the encoder/decoder failed.
        ValueError: bad shape, channel count or bitrate.
    """
    backend = _backend()
    if backend is None:
        raise RuntimeError("no Opus encoder found (install opus-tools, or ffmpeg with libopus)")
    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] == 0:
        raise ValueError(f"expected non-empty (C, T) audio, got shape {tuple(x.shape)}")
    channels, length = x.shape
    if not 1 <= channels <= 8:
        raise ValueError(f"Opus takes 1 to 8 channels, got {channels}")
    if bitrate_kbps <= 0:
        raise ValueError(f"bitrate must be positive, got {bitrate_kbps} kbit/s")
    kbps = float(
        np.clip(bitrate_kbps, MIN_KBPS_PER_CHANNEL * channels, MAX_KBPS_PER_CHANNEL * channels)
    )
    x48 = np.clip(resample(x, sample_rate, OPUS_RATE), -1.0, 1.0)
    with tempfile.TemporaryDirectory(prefix="audiotok-opus-") as tmp:
        src, enc, dec = Path(tmp) / "in.wav", Path(tmp) / "out.opus", Path(tmp) / "dec.wav"
        sf.write(str(src), x48.T, OPUS_RATE, subtype="FLOAT")
        _encode_decode(src, enc, dec, kbps, mode, backend)
        size_bits = enc.stat().st_size * 8
        y48, sr = sf.read(str(dec), dtype="float32", always_2d=True)
    y48 = _fit_length(np.ascontiguousarray(y48.T), x48.shape[-1])
    if y48.shape[0] != channels:  # a decoder that up/down-mixed: bring back the channel count
        y48 = y48.mean(axis=0, keepdims=True).repeat(channels, axis=0)
    y = _fit_length(resample(y48, int(sr), sample_rate), length)
    actual = size_bits / (length / sample_rate) / 1000.0
    return OpusResult(audio=y, bitrate_kbps=kbps, actual_kbps=actual, backend=backend)


def opus_roundtrip(
    wav: np.ndarray, sample_rate: int, bitrate_kbps: float, *, mode: Mode = "vbr"
) -> np.ndarray:
    """Encode and decode with Opus; the decoded audio only.

    Args:
        wav: ``(C, T)`` float audio.
        sample_rate: its rate in Hz.
        bitrate_kbps: total target bitrate in kbit/s (see :func:`opus_encode_decode`).
        mode: ``"vbr"`` (default), ``"cvbr"`` or ``"cbr"``.

    Returns:
        ``(C, T)`` float32 at ``sample_rate``, the same length as ``wav`` and aligned with it.
    """
    return opus_encode_decode(wav, sample_rate, bitrate_kbps, mode=mode).audio
