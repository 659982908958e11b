"""Reading, resampling, channel rules, level normalisation and atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_fixtures import tone, write

from audiotok.audio_io import (
    load_audio,
    normalize_level,
    read_audio,
    read_audio_bytes,
    resample,
    to_channels,
    write_audio,
)
from audiotok.errors import UserError


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "opus", "mp3"])
def test_read_formats_channels_first(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"a.{ext}"
    write_audio(p, tone(0.25, 16000, channels=2).T, 16000)
    wav, sr = read_audio(p)
    assert sr == 16000 and wav.dtype == np.float32 and wav.shape[0] == 2
    assert abs(wav.shape[1] - 4000) <= (0 if ext in ("wav", "flac") else 2000)
    assert np.abs(wav[1]).max() < np.abs(wav[0]).max()  # channel order kept


def test_read_bytes_matches_file(tmp_path: Path) -> None:
    p = write(tmp_path / "a.flac")
    a, _ = read_audio(p)
    b, _ = read_audio_bytes(p.read_bytes(), "a.flac")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "not found"),
        (b"", "empty"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "not a readable audio file"),
        (b"hello, I am a text file\n" * 20, "not a readable audio file"),
    ],
)
def test_bad_files_raise_user_error_naming_file(tmp_path: Path, content, words: str) -> None:
    p = tmp_path / "bad_file.wav"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(UserError, match=words) as info:
        read_audio(p)
    msg = str(info.value)
    assert "bad_file.wav" in msg and "\n" not in msg


def test_nan_samples_raise(tmp_path: Path) -> None:
    x = tone(0.1, 8000)
    x[10] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, x, 8000, subtype="FLOAT")
    with pytest.raises(UserError, match=r"nan\.wav: audio contains NaN"):
        read_audio(p)


def test_resample_keeps_tone_and_length() -> None:
    x = tone(1.0, 16000, freq=1000).T  # (1, T)
    y = resample(x, 16000, 24000)
    assert y.shape == (1, 24000) and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y[0]))
    assert abs(int(spec.argmax()) - 1000) <= 1  # 1 Hz bins over 1 s
    np.testing.assert_allclose(np.sqrt((y**2).mean()), np.sqrt((x**2).mean()), rtol=1e-2)
    assert resample(x[0], 16000, 8000).shape == (8000,)
    assert resample(x, 16000, 16000) is not None


def test_channel_rules() -> None:
    st = np.stack([np.ones(10), -np.ones(10) * 0.5]).astype(np.float32)
    np.testing.assert_allclose(to_channels(st, 1), np.full((1, 10), 0.25))
    mono = st[:1]
    dup = to_channels(mono, 2)
    assert dup.shape == (2, 10) and np.array_equal(dup[0], dup[1])
    np.testing.assert_array_equal(to_channels(st, 2), st)
    surround = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 10), np.float32)
    np.testing.assert_allclose(to_channels(surround, 2), np.full((2, 10), 2.5))  # mean of 0..5
    np.testing.assert_allclose(to_channels(st, 3), np.full((3, 10), 0.25))  # up: the mean too
    with pytest.raises(ValueError):
        to_channels(st, 0)


def test_normalize_level_hits_target_and_limits_peak() -> None:
    x = tone(0.5, 8000).T * 0.01
    y = normalize_level(x, target_db=-20.0, peak_db=0.0)
    assert abs(20 * np.log10(np.sqrt((y**2).mean())) - (-20.0)) < 0.01
    spiky = np.zeros((1, 1000), np.float32)
    spiky[0, 0] = 0.001
    z = normalize_level(spiky, target_db=-10.0, peak_db=-1.0)
    assert np.abs(z).max() <= 10 ** (-1 / 20) + 1e-6
    assert np.array_equal(normalize_level(np.zeros((1, 5)), -20.0), np.zeros((1, 5)))


def test_write_audio_atomic_roundtrip(tmp_path: Path) -> None:
    x = tone(0.2, 8000, channels=2).T
    p = write_audio(tmp_path / "out" / "x.flac", x * 3.0, 8000)  # clipped to [-1, 1]
    y, sr = read_audio(p)
    assert sr == 8000 and y.shape == x.shape and np.abs(y).max() <= 1.0
    assert [f.name for f in p.parent.iterdir()] == ["x.flac"]  # no temp file left
    z = load_audio(p, sample_rate=16000, channels=1)
    assert z.shape == (1, 3200)
