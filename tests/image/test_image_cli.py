"""encode/decode/eval/info with image models: round trips, output names, --force, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_image_models import tiny_vqvae, tiny_vqvae2
from typer.testing import CliRunner

from audiotok import hub
from audiotok.cli import app
from audiotok.codes import ImageCodesMeta, read_codes
from audiotok.image_io import read_image
from audiotok.tokenizer import ImageTokenizer
from audiotok.tokenizer.image import pixels_to_images


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("image_models")
    torch.manual_seed(0)
    grey = hub.save_pretrained(tiny_vqvae(channels=1), root / "grey")
    torch.manual_seed(1)
    other = hub.save_pretrained(tiny_vqvae(channels=1), root / "other")
    torch.manual_seed(2)
    two = hub.save_pretrained(tiny_vqvae2(channels=3), root / "two")
    return {"grey": str(grey), "other": str(other), "two": str(two)}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _png(path: Path, h: int, w: int, colour: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return a


def test_round_trip_equals_the_tokenizer(tmp_path: Path, models: dict[str, str]) -> None:
    src = _png(tmp_path / "x.png", 13, 10)
    code, out, err = run("encode", str(tmp_path / "x.png"), "--model", models["grey"])
    assert code == 0 and "encoded 1 image(s), 0 failed" in out, err
    codes, meta = read_codes(tmp_path / "x.npy")
    assert isinstance(meta, ImageCodesMeta) and meta.modality == "image"
    assert (meta.height, meta.width, meta.original_channels) == (13, 10, 1)
    tok = hub.load(models["grey"])
    assert isinstance(tok, ImageTokenizer) and meta.model_id == tok.model_id
    expected = tok.encode(pixels_to_images(src[..., None]))[0]
    assert codes.shape == (1, 4, 3) and np.array_equal(codes, expected.numpy())
    code, out, err = run("decode", str(tmp_path / "x.npy"), "--model", models["grey"])
    assert code == 0, err
    # the source picture is never the output: x.png exists, so x.decoded.png
    assert "kept x.png" in out and (tmp_path / "x.decoded.png").is_file()
    got = read_image(tmp_path / "x.decoded.png")
    ref = tok.decode(expected[None], size=(13, 10))
    ref = ((ref.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert got.shape == (13, 10, 1) and np.array_equal(got, ref)
    # decoding again replaces only its own output, and only with --force
    code, _, err = run("decode", str(tmp_path / "x.npy"), "--model", models["grey"])
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, _ = run("decode", str(tmp_path / "x.npy"), "-m", models["grey"], "--force")
    assert code == 0 and np.array_equal(read_image(tmp_path / "x.png")[..., 0], src)


def test_folder_batch_reports_bad_files_and_finishes_good(
    tmp_path: Path, models: dict[str, str]
) -> None:
    _png(tmp_path / "in" / "a.png", 8, 8)
    _png(tmp_path / "in" / "sub" / "B.PNG", 9, 7, colour=True)
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(tmp_path / "in" / "c.BmP")
    (tmp_path / "in" / "trunc.png").write_bytes((tmp_path / "in" / "a.png").read_bytes()[:60])
    (tmp_path / "in" / "text.jpg").write_text("not an image")
    # a TIFF in LAB mode named .webp: Pillow opens it by content; LAB is not supported
    Image.new("LAB", (4, 4)).save(tmp_path / "in" / "lab.webp", format="TIFF")
    Image.new("I;16", (4, 4)).save(tmp_path / "in" / "deep.png")
    code, out, err = run(
        "encode", str(tmp_path / "in"), "-m", models["grey"], "-o", str(tmp_path / "t")
    )
    assert code == 1 and "encoded 4 image(s), 3 failed" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "trunc.png" in err and "text.jpg" in err and "Traceback" not in err
    assert "unsupported image mode 'LAB'" in err
    assert (tmp_path / "t" / "sub" / "B.npy").is_file() and (tmp_path / "t" / "c.npy").is_file()
    # decoding the folder: colour sources come back as colour PNGs at their size
    code, out, err = run("decode", str(tmp_path / "t"), "-m", models["grey"])
    assert code == 0, err
    assert read_image(tmp_path / "t" / "sub" / "B.png").shape == (9, 7, 3)
    assert read_image(tmp_path / "t" / "c.png").shape == (5, 6, 1)


def test_force_semantics_on_encode(tmp_path: Path, models: dict[str, str]) -> None:
    _png(tmp_path / "x.png", 8, 8)
    (tmp_path / "x.npy").write_bytes(b"precious")
    code, _, err = run("encode", str(tmp_path / "x.png"), "-m", models["grey"])
    assert code == 1 and "exists" in err and (tmp_path / "x.npy").read_bytes() == b"precious"
    code, _, _ = run("encode", str(tmp_path / "x.png"), "-m", models["grey"], "--force")
    assert code == 0 and read_codes(tmp_path / "x.npy")[0].shape == (1, 2, 2)


def test_bad_inputs_are_one_line(tmp_path: Path, models: dict[str, str]) -> None:
    (tmp_path / "empty").mkdir()
    _png(tmp_path / "x.png", 8, 8)
    run("encode", str(tmp_path / "x.png"), "-m", models["grey"])
    cases = [
        ("encode", str(tmp_path / "empty"), "-m", models["grey"]),
        ("encode", str(tmp_path / "missing.png"), "-m", models["grey"]),
        ("encode", str(tmp_path / "x.png"), "-m", "no-such-model"),
        ("decode", str(tmp_path / "x.npy"), "-m", models["other"]),  # another model's codes
        ("decode", str(tmp_path / "x.npy"), "-m", models["two"]),
        ("eval", str(tmp_path / "empty"), "-m", models["grey"], "-o", str(tmp_path / "r")),
        ("info", "no-such-model"),
        ("encode", str(tmp_path / "x.png"), "-m", models["grey"], "-k", "2"),
        ("encode", str(tmp_path / "x.png"), "-m", models["grey"], "-b", "3"),
    ]
    for args in cases:
        code, _, err = run(*args)
        assert code != 0, args
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), (args, err)
    code, _, err = run("info", "no-such-model")
    assert "default" in err and "fmnist" in err  # the message lists the bundled names
    code, _, err = run("decode", str(tmp_path / "x.npy"), "-m", models["other"])
    assert "made by model" in err


def test_bad_token_files(tmp_path: Path, models: dict[str, str]) -> None:
    import dataclasses
    import struct

    from audiotok.codes import MAGIC

    tok = hub.load(models["grey"])
    np.save(tmp_path / "range.npy", np.full((1, 2, 2), 16))  # codebook_size is 16
    np.save(tmp_path / "shape.npy", np.zeros((1, 3, 2), np.int64))
    # a trailer that lies about the size (80x8 needs a 20x2 grid, the file holds 2x2)
    lie = dataclasses.replace(tok.codes_meta(1, 8, 8), height=80)
    blob = json.dumps(lie.to_dict()).encode()
    np.save(tmp_path / "lie.npy", np.zeros((1, 2, 2), np.uint8))
    with open(tmp_path / "lie.npy", "ab") as f:
        f.write(blob + struct.pack("<Q", len(blob)) + MAGIC)
    for name, words in (("range.npy", "out of range"), ("lie.npy", "80x8")):
        code, _, err = run("decode", str(tmp_path / name), "-m", models["grey"])
        assert code == 1 and len(err.strip().splitlines()) == 1 and words in err, err
    # a bare (K, H', W') array decodes to the full grid
    code, _, err = run("decode", str(tmp_path / "shape.npy"), "-m", models["grey"])
    assert code == 0 and read_image(tmp_path / "shape.png").shape == (12, 8, 1)
    # image tokens given to an audio model: one line naming the modality
    code, _, err = run("decode", str(tmp_path / "lie.npy"), "-m", "default")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_vqvae2_round_trip_and_info(tmp_path: Path, models: dict[str, str]) -> None:
    src = _png(tmp_path / "p.png", 17, 9, colour=True)
    assert (
        run("encode", str(tmp_path / "p.png"), "-m", models["two"], "-o", str(tmp_path / "q.npz"))[
            0
        ]
        == 0
    )
    codes, meta = read_codes(tmp_path / "q.npz")
    assert meta is not None and codes.shape == (9, 3, 2)  # 1 top row + 2 * 2 * 2 bottom rows
    assert run("decode", str(tmp_path / "q.npz"), "-m", models["two"])[0] == 0
    assert read_image(tmp_path / "q.png").shape == src.shape
    code, out, _ = run("info", models["two"])
    assert code == 0 and "levels:" in out and "modality:          image" in out


def test_eval_reports_whole_set_numbers(tmp_path: Path, models: dict[str, str]) -> None:
    for i in range(5):
        _png(tmp_path / "imgs" / f"{i}.png", 8, 12, seed=i)
    _png(tmp_path / "imgs" / "odd.png", 5, 5, seed=9)
    (tmp_path / "imgs" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    arr = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "set.npy", arr)
    out_dir = tmp_path / "report"
    code, out, err = run(
        "eval", str(tmp_path / "imgs"), str(tmp_path / "set.npy"), "-m", models["grey"],
        "-o", str(out_dir),
    )  # fmt: skip
    assert code == 1 and "bad.png" in err  # one bad file: reported, the rest evaluated
    data = json.loads((out_dir / "report.json").read_text())
    s = data["summary"]
    assert s["images"] == 9 and s["sizes"] == {"8x12": 5, "5x5": 1, "8x8": 3}
    tok = hub.load(models["grey"])
    assert s["bits_per_image_raw"] == pytest.approx((5 * 6 + 4 + 3 * 4) * 4 / 9)
    # usage over the whole set: every code seen in any image counts once
    seen = set()
    for i in range(5):
        seen |= set(tok.encode_file(tmp_path / "imgs" / f"{i}.png")[0].flatten().tolist())
    seen |= set(tok.encode_file(tmp_path / "imgs" / "odd.png")[0].flatten().tolist())
    seen |= set(tok.encode(pixels_to_images(arr[..., None])).flatten().tolist())
    assert s["codes_used_per_codebook"] == [len(seen)]
    assert 0 < s["ssim"] <= 1 and np.isfinite(s["psnr_db"])
    assert (out_dir / "grid.png").is_file() and "PSNR" in (out_dir / "report.md").read_text()
    assert read_image(out_dir / "grid.png").shape == (16, 5 * 12, 1)
    code, _, err = run("eval", str(tmp_path / "set.npy"), "-m", models["grey"], "-o", str(out_dir))
    assert code == 1 and "not empty" in err


def test_bundled_fmnist_loads_by_name_and_decodes_without_model(tmp_path: Path) -> None:
    tok = hub.load("fmnist")
    assert isinstance(tok, ImageTokenizer) and tok.latent_shape(28, 28) == (7, 7)
    assert tok.channels == 1 and tok.codebook_size == 512
    _png(tmp_path / "f.png", 28, 28)
    assert run("encode", str(tmp_path / "f.png"), "-m", "fmnist")[0] == 0
    out = subprocess.run(
        [sys.executable, "-m", "audiotok", "decode", str(tmp_path / "f.npy")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert read_image(tmp_path / "f.decoded.png").shape == (28, 28, 1)
