"""The NumPy mel filterbank is librosa's, bit for bit (the losses and metrics use it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiotok.audio.melbank import hz_to_mel, mel_filterbank, mel_to_hz

librosa = pytest.importorskip("librosa")


@settings(max_examples=60, deadline=None)
@given(
    sr=st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000]),
    n_fft=st.sampled_from([32, 64, 100, 128, 256, 512, 1024, 1280, 2048]),
    n_mels=st.integers(1, 320),
    fmin=st.sampled_from([0.0, 20.0, 300.0]),
    fmax=st.sampled_from([None, 4000.0]),
)
def test_equals_librosa(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty bands at small n_fft
        expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    got = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_mel_scale_round_trips_and_is_linear_below_1khz() -> None:
    hz = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 12000.0])
    assert np.allclose(mel_to_hz(hz_to_mel(hz)), hz)
    assert hz_to_mel(600.0) == pytest.approx(9.0)  # 200/3 Hz per mel
    assert np.allclose(hz_to_mel(hz), librosa.hz_to_mel(hz))
