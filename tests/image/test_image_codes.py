"""Image token files: (K, H', W') codes with the image trailer; audio files still read."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from audiotok.codes import (
    MAGIC,
    CodesMeta,
    ImageCodesMeta,
    meta_from_dict,
    read_codes,
    write_codes,
)
from audiotok.errors import UserError

META = ImageCodesMeta(
    model_id="img1",
    family="image_vqvae",
    audiotok_version="0.1.0",
    channels=1,
    downsample_factor=4,
    num_codebooks=1,
    codebook_size=512,
    height=27,
    width=28,
    original_channels=3,
)
IMAGE_MODEL = SimpleNamespace(model_id="img1", num_codebooks=1, codebook_size=512, modality="image")
AUDIO_MODEL = SimpleNamespace(model_id="img1", num_codebooks=1, codebook_size=512, modality="audio")


def _with_trailer(path: Path, arr: np.ndarray, meta: dict) -> Path:
    np.save(path, arr)
    blob = json.dumps(meta).encode()
    with open(path, "ab") as f:
        f.write(blob + struct.pack("<Q", len(blob)) + MAGIC)
    return path


@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_round_trip_keeps_k1_and_size(tmp_path: Path, ext: str) -> None:
    codes = np.random.default_rng(0).integers(0, 512, (1, 7, 7))
    path = write_codes(tmp_path / f"x{ext}", codes[None], META)  # (1, K, H', W') accepted
    got, meta = read_codes(path, IMAGE_MODEL)
    assert got.shape == (1, 7, 7) and got.dtype == np.uint16 and np.array_equal(got, codes)
    assert meta == META and isinstance(meta, ImageCodesMeta)
    if ext == ".npy":  # a plain numpy file still
        assert np.array_equal(np.load(path, allow_pickle=False), codes)


def test_old_audio_metadata_without_modality_is_audio(tmp_path: Path) -> None:
    audio = {
        "model_id": "a1", "family": "soundstream", "audiotok_version": "0.1.0",
        "sample_rate": 8000, "frame_rate": 1000.0, "hop_length": 8, "channels": 1,
        "num_codebooks": 2, "codebook_size": 16, "length": 40, "original_sample_rate": 8000,
        "original_length": 40, "original_channels": 1, "format": "audiotok-codes/1",
    }  # fmt: skip
    path = _with_trailer(tmp_path / "old.npy", np.zeros((2, 5), np.uint8), audio)
    codes, meta = read_codes(path)
    assert isinstance(meta, CodesMeta) and meta.modality == "audio" and codes.shape == (2, 5)
    assert meta_from_dict(audio) == meta
    with pytest.raises(ValueError, match="unknown modality"):
        meta_from_dict({**audio, "modality": "video"})


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"height": 80}, "80x28"),
        ({"width": 0}, "width 0"),
        ({"height": 1 << 20}, "height"),
        ({"channels": 7}, "channels"),
        ({"downsample_factor": 0}, "downsample_factor"),
        ({"num_codebooks": 2}, "code rows"),
        ({"modality": "video"}, "unknown modality"),
        ({"height": "27"}, "height"),
    ],
)
def test_lying_metadata_is_one_line(tmp_path: Path, change: dict, words: str) -> None:
    meta = {**META.to_dict(), **change}
    path = _with_trailer(tmp_path / "x.npy", np.zeros((1, 7, 7), np.uint16), meta)
    with pytest.raises(UserError, match=words) as info:
        read_codes(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


def test_codes_that_do_not_fit(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="out of range"):
        write_codes(tmp_path / "x.npy", np.full((1, 7, 7), 512), META)
    with pytest.raises(UserError, match="grid"):
        write_codes(tmp_path / "x.npy", np.zeros((1, 6, 7), np.int64), META)
    with pytest.raises(UserError, match="shape"):
        write_codes(tmp_path / "x.npy", np.zeros((7, 7), np.int64), META)
    path = write_codes(tmp_path / "ok.npy", np.zeros((1, 7, 7), np.int64), META)
    with pytest.raises(UserError, match="image tokens .* audio model"):
        read_codes(path, AUDIO_MODEL)
    with pytest.raises(UserError, match="made by model img1"):
        read_codes(path, SimpleNamespace(**{**vars(IMAGE_MODEL), "model_id": "other"}))
    np.save(tmp_path / "bare.npy", np.zeros((1, 7), np.int64))  # 2-D: not image codes
    with pytest.raises(UserError, match="shape"):
        read_codes(tmp_path / "bare.npy", IMAGE_MODEL)
    np.save(tmp_path / "bare3.npy", np.zeros((1, 7, 7), np.int64))
    assert read_codes(tmp_path / "bare3.npy", IMAGE_MODEL)[0].shape == (1, 7, 7)


def test_force_semantics(tmp_path: Path) -> None:
    path = write_codes(tmp_path / "x.npy", np.zeros((1, 7, 7), np.int64), META)
    with pytest.raises(UserError, match="exists"):
        write_codes(path, np.ones((1, 7, 7), np.int64), META)
    write_codes(path, np.ones((1, 7, 7), np.int64), META, force=True)
    assert read_codes(path)[0].max() == 1


def test_a_huge_header_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<u2", "fortran_order": False, "shape": (1, 1 << 20, 1 << 20)}
        )
        f.write(b"\0" * 64)
    with pytest.raises(UserError, match="at most"):
        read_codes(path, IMAGE_MODEL)
