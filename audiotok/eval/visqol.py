"""ViSQOL v3 (arXiv:2004.09584): an objective MOS-LQO (1-5) for coded speech and music.

A thin wrapper over the optional pure-Python port ``visqol-python`` (import name ``visqol``;
``pip install audiotok[visqol]``). Two modes, as in Google's reference implementation:

* ``"audio"`` (music and general audio): full band at 48 kHz, SVR mapping to MOS;
* ``"speech"``: wide band at 16 kHz, voice-activity-aware; the deep-lattice MOS mapper is
  used when its runtime (``ai-edge-litert``) is installed, as in the C++ default, else the
  polynomial mapper (:attr:`ViSQOL.mapper` says which).

Signals are mixed to mono and resampled here with soxr to the mode's rate. ViSQOL needs
about one second of audio at least; shorter clips raise ``ValueError``.
The first call in a fresh environment compiles numba kernels (~10 s, cached on disk after).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Literal

import numpy as np

Mode = Literal["audio", "speech"]

#: Sample rate each ViSQOL mode works at.
VISQOL_RATES: dict[str, int] = {"audio": 48_000, "speech": 16_000}

#: Shortest clip (seconds) ViSQOL can score (its patch size needs about this much).
MIN_SECONDS = 1.0


def visqol_available() -> bool:
    """True when the optional ``visqol-python`` package is installed."""
    return importlib.util.find_spec("visqol") is not None


def _mono_at(wav: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected (C, T) or (T,) audio, got shape {tuple(np.shape(wav))}")
    if from_sr != to_sr:
        import soxr

        x = soxr.resample(x, from_sr, to_sr, quality="HQ")
    return np.ascontiguousarray(x, dtype=np.float64)


class ViSQOL:
    """A ViSQOL scorer for one mode; create it once and call it for many pairs.

    Args:
        mode: ``"audio"`` (music, 48 kHz) or ``"speech"`` (16 kHz).

    Raises:
        ImportError: ``visqol-python`` is not installed.
        ValueError: unknown mode.
    """

    def __init__(self, mode: Mode = "audio") -> None:
        if mode not in VISQOL_RATES:
            raise ValueError(f"ViSQOL mode must be 'audio' or 'speech', got {mode!r}")
        if not visqol_available():
            raise ImportError("ViSQOL needs the optional package: pip install 'audiotok[visqol]'")
        from visqol import VisqolApi

        self.mode: Mode = mode
        self.sample_rate = VISQOL_RATES[mode]
        lattice = mode == "speech" and importlib.util.find_spec("ai_edge_litert") is not None
        self.mapper = "lattice" if lattice else ("polynomial" if mode == "speech" else "svr")
        self._api = VisqolApi()
        kwargs = {"use_lattice_model": lattice} if mode == "speech" else {}
        self._api.create(mode=mode, **kwargs)

    def __call__(self, reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
        """Score ``degraded`` against ``reference``.

        Args:
            reference: ``(C, T)`` or ``(T,)`` float audio.
            degraded: the same shape as ``reference`` (same rate, aligned).
            sample_rate: rate of both signals in Hz.

        Returns:
            MOS-LQO in [1, 5] (higher is better).

        Raises:
            ValueError: clips shorter than :data:`MIN_SECONDS`, or mismatched shapes.
        """
        if np.shape(reference) != np.shape(degraded):
            raise ValueError(
                f"reference and degraded shapes differ: {np.shape(reference)} vs "
                f"{np.shape(degraded)}"
            )
        seconds = np.shape(reference)[-1] / sample_rate
        if seconds < MIN_SECONDS:
            raise ValueError(f"ViSQOL needs at least {MIN_SECONDS:g} s of audio, got {seconds:.2f}")
        ref = _mono_at(reference, sample_rate, self.sample_rate)
        deg = _mono_at(degraded, sample_rate, self.sample_rate)
        # the port logs a warning per call about rates / silent patches; keep the CLI quiet
        log = logging.getLogger("visqol")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            result = self._api.measure_from_arrays(ref, deg, self.sample_rate)
        finally:
            log.setLevel(level)
        return float(result.moslqo)


def visqol_score(
    reference: np.ndarray, degraded: np.ndarray, sample_rate: int, mode: Mode = "audio"
) -> float:
    """One-off ViSQOL MOS-LQO; build a :class:`ViSQOL` instead to score many pairs.

    Args:
        reference: ``(C, T)`` or ``(T,)`` float audio.
        degraded: same shape, aligned with ``reference``.
        sample_rate: rate of both in Hz (resampled to 48 kHz / 16 kHz internally).
        mode: ``"audio"`` for music and general audio, ``"speech"`` for speech.

    Returns:
        MOS-LQO in [1, 5].
    """
    return ViSQOL(mode)(reference, degraded, sample_rate)
