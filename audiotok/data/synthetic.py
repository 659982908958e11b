"""Synthetic audio made on the fly: a data source that needs no files (``data.train: synthetic``).

A fresh clone can train a recipe end to end before any corpus is built: each item is a mix of
one to three seeded events (a pure tone, an exponential chirp, a band-limited noise burst, a
harmonic stack with vibrato) with attack/release envelopes, at any sample rate and channel
count. Items are a pure function of ``(seed, split, epoch, index)`` through
``numpy.random.default_rng``, so runs are reproducible, independent of DataLoader workers and
resumable exactly like :class:`~audiotok.data.audio.AudioDataset`. The ``"dev"`` split uses
its own random stream and ignores the epoch, so validation sees the same clips every time
and never a training clip.

Such audio exercises the whole pipeline (losses, quantizers, discriminators, checkpoints);
a codec trained on it is not a speech or music codec.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.audio_io import normalize_level

__all__ = ["SYNTHETIC_SOURCE", "SyntheticAudioDataset", "is_synthetic", "synthetic_clip"]

#: The data-source string that selects :class:`SyntheticAudioDataset`.
SYNTHETIC_SOURCE = "synthetic"

_SPLIT_KEY = {"train": 0x5EED_7A1, "dev": 0xDE5_C0DE}
_KINDS = ("tone", "chirp", "noise", "harmonic")


def is_synthetic(source: Any) -> bool:
    """Whether a data source names the synthetic generator (the string ``"synthetic"``; a
    folder of that name is ``./synthetic``)."""
    return isinstance(source, str | os.PathLike) and str(source).strip() == SYNTHETIC_SOURCE


def _envelope(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    attack = max(1, int(rng.uniform(0.002, 0.05) * sample_rate))
    release = max(1, int(rng.uniform(0.01, 0.2) * sample_rate))
    env = np.ones(n)
    a, r = min(attack, n), min(release, n)
    env[:a] *= np.linspace(0.0, 1.0, a, endpoint=False)
    env[n - r :] *= np.linspace(1.0, 0.0, r)
    return env


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo * 1.01)))))


def _event(rng: np.random.Generator, kind: str, n: int, sample_rate: int) -> np.ndarray:
    """One unit-peak event of ``n`` samples, ``(n,) float64``."""
    t = np.arange(n) / sample_rate
    top = 0.45 * sample_rate
    if kind == "tone":
        f = _log_uniform(rng, 50.0, min(top, 8000.0))
        x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    elif kind == "chirp":
        f0, f1 = _log_uniform(rng, 50.0, top), _log_uniform(rng, 50.0, top)
        span = max(t[-1], 1.0 / sample_rate) if n > 1 else 1.0 / sample_rate
        k = f1 / f0
        if abs(np.log(k)) < 1e-6:
            phase = 2 * np.pi * f0 * t
        else:  # exponential sweep f(t) = f0 * k ** (t / span)
            phase = 2 * np.pi * f0 * span / np.log(k) * (k ** (t / span) - 1.0)
        x = np.sin(phase)
    elif kind == "noise":
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
        centre, width = _log_uniform(rng, 100.0, top), rng.uniform(0.3, 2.0)  # octaves
        octaves = np.log2(np.maximum(freqs, 1.0) / centre)
        x = np.fft.irfft(spec * np.exp(-0.5 * (octaves / width) ** 2), n)
    else:  # harmonic stack: f0 with partials k * f0 at 1 / k**tilt, slow vibrato
        f0 = _log_uniform(rng, 60.0, min(500.0, top / 2))
        tilt = rng.uniform(0.5, 2.0)
        vib = 1.0 + rng.uniform(0.0, 0.02) * np.sin(2 * np.pi * rng.uniform(3.0, 7.0) * t)
        phase = 2 * np.pi * np.cumsum(f0 * vib) / sample_rate
        partials = np.arange(1, max(2, int(top / (f0 * 1.03))) + 1)[:40]
        x = (np.sin(np.outer(partials, phase)) / partials[:, None] ** tilt).sum(axis=0)
    peak = np.abs(x).max()
    return x / peak if peak > 0 else x


def synthetic_clip(
    rng: np.random.Generator, sample_rate: int, length: int, channels: int = 1
) -> np.ndarray:
    """A mix of 1-3 random events, ``(channels, length) float32`` with peak <= 0.95.

    Each event has a random kind, onset, duration (10-100 % of the clip), level (-24 to -3
    dB) and, for several channels, pan; a -60 dB noise floor keeps silence out of the clip.
    """
    mix = np.zeros((channels, length))
    for _ in range(int(rng.integers(1, 4))):
        kind = _KINDS[int(rng.integers(len(_KINDS)))]
        n = max(1, int(length * rng.uniform(0.1, 1.0)))
        start = int(rng.integers(0, length - n + 1))
        x = _event(rng, kind, n, sample_rate) * _envelope(rng, n, sample_rate)
        gain = 10.0 ** (rng.uniform(-24.0, -3.0) / 20.0)
        pan = rng.uniform(0.6, 1.0, size=channels) if channels > 1 else np.ones(1)
        mix[:, start : start + n] += gain * pan[:, None] * x
    mix += 1e-3 * rng.standard_normal(mix.shape)
    peak = np.abs(mix).max()
    if peak > 0.95:
        mix *= 0.95 / peak
    return mix.astype(np.float32)


class SyntheticAudioDataset(Dataset):
    """Seeded synthetic clips (tones, chirps, noise bursts, harmonic stacks); no files.

    Args:
        sample_rate: rate of the returned audio.
        channels: channel count of the returned audio.
        segment_seconds: clip length (``None``: 1 s, for whole-"file" validation).
        split: ``"train"`` (a new set of clips every epoch) or ``"dev"`` (the same clips at
            every epoch, from a stream separate from training).
        seed: base seed.
        num_examples: items per epoch (default 256 for train, 16 for dev).
        loudness_db: RMS target (dBFS) for :func:`~audiotok.audio_io.normalize_level`, or None.

    Items are ``wav: (C, T)`` float32 tensors. Like :class:`~audiotok.data.audio.AudioDataset`
    it has :meth:`set_epoch`, ``num_skipped`` (always 0) and ``dropped`` (always empty).
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int = 1,
        segment_seconds: float | None = 1.0,
        *,
        split: Literal["train", "dev"] = "train",
        seed: int = 0,
        num_examples: int | None = None,
        loudness_db: float | None = None,
    ) -> None:
        if split not in _SPLIT_KEY:
            raise ValueError(f"split must be 'train' or 'dev', got {split!r}")
        if int(sample_rate) < 1 or int(channels) < 1:
            raise ValueError(f"bad sample_rate={sample_rate} / channels={channels}")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        seconds = 1.0 if segment_seconds is None else float(segment_seconds)
        self.segment_length = int(round(seconds * self.sample_rate))
        if self.segment_length < 1:
            raise ValueError(f"segment_seconds={segment_seconds} gives an empty clip")
        self.split = split
        self.seed = int(seed)
        self.epoch = 0
        self.loudness_db = loudness_db
        default = 256 if split == "train" else 16
        self.num_examples = int(num_examples) if num_examples else default
        self.dropped: list[tuple[str, str]] = []

    @property
    def num_skipped(self) -> int:
        """Always 0: generated clips cannot be unreadable."""
        return 0

    def set_epoch(self, epoch: int) -> None:
        """Select the clips of epoch ``epoch`` (training split; dev ignores it)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        epoch = self.epoch if self.split == "train" else 0
        rng = np.random.default_rng([_SPLIT_KEY[self.split], self.seed % 2**63, epoch, index])
        wav = synthetic_clip(rng, self.sample_rate, self.segment_length, self.channels)
        if self.loudness_db is not None:
            wav = normalize_level(wav, self.loudness_db)
        return torch.from_numpy(np.ascontiguousarray(wav))
