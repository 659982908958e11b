"""Readers for LibriSpeech/LibriTTS, VCTK and plain-folder layouts on fixture trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import write

from audiotok.data.layouts import (
    detect_layout,
    folder_entries,
    layout_entries,
    librispeech_entries,
    vctk_entries,
)
from audiotok.errors import UserError


def _librispeech(root: Path) -> None:
    for split in ("train-clean-100", "dev-clean"):
        for spk, chap in (("19", "198"), ("26", "495")):
            for utt in range(2):
                write(root / split / spk / chap / f"{spk}-{chap}-{utt:04d}.flac", 0.1)
            (root / split / spk / chap / f"{spk}-{chap}.trans.txt").write_text("x\n")
    (root / "README.TXT").write_text("readme")


def test_librispeech_layout(tmp_path: Path) -> None:
    _librispeech(tmp_path / "LibriSpeech")
    entries = librispeech_entries(tmp_path / "LibriSpeech")
    assert len(entries) == 8
    assert {e.extra["speaker"] for e in entries} == {"librispeech_19", "librispeech_26"}
    assert {e.extra["split"] for e in entries} == {"train-clean-100", "dev-clean"}
    assert all(e.sample_rate == 16000 and e.duration == pytest.approx(0.1) for e in entries)
    dev = librispeech_entries(tmp_path / "LibriSpeech", splits=["dev-clean"])
    assert len(dev) == 4 and all("dev-clean" in e.path for e in dev)
    one_split = librispeech_entries(tmp_path / "LibriSpeech" / "dev-clean", probe_files=False)
    assert [e.path for e in one_split] == [e.path for e in dev]
    assert detect_layout(tmp_path / "LibriSpeech") == "librispeech"
    with pytest.raises(UserError, match="test-other"):
        librispeech_entries(tmp_path / "LibriSpeech", splits=["test-other"])


def test_libritts_wavs(tmp_path: Path) -> None:
    write(tmp_path / "train-clean-100" / "103" / "1241" / "103_1241_000000_000001.wav", 0.1, 24000)
    (e,) = layout_entries(tmp_path, "libritts")
    assert e.extra["speaker"] == "libritts_103" and e.sample_rate == 24000


def test_vctk_092_keeps_mic1_only(tmp_path: Path) -> None:
    base = tmp_path / "VCTK" / "wav48_silence_trimmed"
    for spk in ("p225", "p226"):
        for mic in ("mic1", "mic2"):
            write(base / spk / f"{spk}_001_{mic}.flac", 0.1, 48000)
    entries = vctk_entries(tmp_path / "VCTK")
    assert [Path(e.path).name for e in entries] == ["p225_001_mic1.flac", "p226_001_mic1.flac"]
    assert [e.extra["speaker"] for e in entries] == ["vctk_p225", "vctk_p226"]
    assert len(vctk_entries(tmp_path / "VCTK", mics=None)) == 4
    assert detect_layout(tmp_path / "VCTK") == "vctk"


def test_vctk_080_wavs(tmp_path: Path) -> None:
    write(tmp_path / "wav48" / "p225" / "p225_001.wav", 0.1, 48000)
    (e,) = layout_entries(tmp_path)
    assert e.extra["speaker"] == "vctk_p225" and e.sample_rate == 48000


def test_plain_folder(tmp_path: Path) -> None:
    write(tmp_path / "top.wav")
    write(tmp_path / "alice" / "deep" / "x.ogg")
    entries = folder_entries(tmp_path)
    assert [e.extra["speaker"] for e in entries] == ["alice", ""]
    assert detect_layout(tmp_path) == "folder"
    with pytest.raises(UserError, match="no audio files"):
        (tmp_path / "empty").mkdir()
        folder_entries(tmp_path / "empty")
