"""image_io: every file mode to (H, W, 1 | 3) uint8, bad files as one line, tagged PNG writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audiotok import image_io
from audiotok.errors import UserError
from audiotok.image_io import read_image, to_channels, write_image, written_by_audiotok


def test_modes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")  # a grey palette
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # I;16
    Image.fromarray(grey).convert("LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image(tmp_path / "l.png")[..., 0], grey)
    assert np.array_equal(read_image(tmp_path / "rgb.bmp"), rgb)
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)  # alpha dropped
    assert np.array_equal(read_image(tmp_path / "p.png")[..., 0], grey)
    assert np.array_equal(read_image(tmp_path / "deep.png")[..., 0], grey)
    assert np.array_equal(read_image(tmp_path / "la.png")[..., 0], grey)


def test_bad_files_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    Image.new("LAB", (4, 4)).save(tmp_path / "lab.png", format="TIFF")
    (tmp_path / "dir.png").mkdir()
    cases = {
        "trunc.png": "truncated",
        "empty.png": "empty",
        "text.png": "not an image",
        "lab.png": "unsupported image mode 'LAB'",
        "dir.png": "not a file",
        "missing.png": "not found",
    }
    for name, words in cases.items():
        with pytest.raises(UserError, match=words) as info:
            read_image(tmp_path / name)
        assert "\n" not in str(info.value) and str(info.value).startswith(str(tmp_path / name))
    monkeypatch.setattr(image_io, "MAX_PIXELS", 63)
    with pytest.raises(UserError, match="8x8 image; at most 63 pixels"):
        read_image(tmp_path / "ok.png")


def test_channels() -> None:
    rgb = np.array([[[255, 0, 0], [10, 20, 30]]], np.uint8)
    assert to_channels(rgb, 1)[..., 0].tolist() == [[76, 18]]  # 601 luma, rounded
    assert to_channels(rgb[..., :1], 3).shape == (1, 2, 3)
    with pytest.raises(UserError):
        to_channels(rgb, 4)


def test_write_is_tagged_atomic_and_never_overwrites(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    path = write_image(a, tmp_path / "x.png")
    assert written_by_audiotok(path) and np.array_equal(read_image(path), a)
    with pytest.raises(UserError, match="exists"):
        write_image(a * 2, path)
    write_image(a * 2, path, force=True)
    assert np.array_equal(read_image(path), a * 2)
    Image.new("L", (2, 2)).save(tmp_path / "user.png")
    assert not written_by_audiotok(tmp_path / "user.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.png", "x.png"]  # no temp left
