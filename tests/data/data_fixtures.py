"""Helpers for data tests: tiny audio files written with soundfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine, ``(T, C)`` as soundfile wants it; each channel at a different amplitude."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (1.0 - 0.25 * c) for c in range(channels)], axis=1).astype(np.float32)


def write(path: Path, seconds: float = 0.5, sample_rate: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sample_rate, **kw), sample_rate)
    return path
