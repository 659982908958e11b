"""The encode/decode/info commands on a tiny exported model: round trips, batches, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiotok import hub
from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.cli import app
from audiotok.codes import read_codes, write_codes

RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


def _save_model(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    config = SoundStreamConfig(
        sample_rate=8000, ratios=(2, 4), encoder_channels=4, latent_dim=8, decoder="seanet",
        decoder_channels=4, quantizer=RVQ,
    )  # fmt: skip
    return hub.save_pretrained(SoundStream(config), path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("models")
    return str(_save_model(root / "a", 0)), str(_save_model(root / "b", 1))


def _noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, channels)) * 0.1).astype(np.float32)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_round_trip_restores_length_and_rate(tmp_path: Path, models: tuple[str, str]) -> None:
    model = models[0]
    sf.write(tmp_path / "song.wav", _noise(1003), 8000)
    sf.write(tmp_path / "cd.flac", _noise(2205, channels=2), 22050)
    code, out, _ = run("encode", str(tmp_path / "song.wav"), str(tmp_path / "cd.flac"), "-m", model)
    assert code == 0 and "encoded 2 file(s), 0 failed" in out
    codes, meta = read_codes(tmp_path / "song.npy")
    tok = hub.load(model)
    assert meta is not None and meta.model_id == tok.model_id and meta.length == 1003
    assert np.array_equal(codes, tok.encode(_noise(1003).T)[0].numpy())
    assert np.load(tmp_path / "song.npy", allow_pickle=False).dtype == np.uint8
    # beside the tokens, the source song.wav is kept: the audio goes to song.decoded.wav
    source = (tmp_path / "song.wav").read_bytes()
    code, out, _ = run("decode", str(tmp_path / "song.npy"), "-m", model)
    assert code == 0 and "kept song.wav (not written by audiotok), wrote" in out
    assert (tmp_path / "song.wav").read_bytes() == source
    assert sf.info(tmp_path / "song.decoded.wav").frames == 1003
    # once both exist, nothing is overwritten without --force; the error names the output
    code, _, err = run("decode", str(tmp_path / "song.npy"), "-m", model)
    decoded = tmp_path / "song.decoded.wav"
    assert code == 1 and err.startswith(f"error: {decoded}: output already exists")
    # and --force replaces that output, never the recording
    code, _, _ = run("decode", str(tmp_path / "song.npy"), "-m", model, "--force")
    assert code == 0 and (tmp_path / "song.wav").read_bytes() == source
    dec = tmp_path / "dec"
    code, out, _ = run(
        "decode", str(tmp_path / "song.npy"), str(tmp_path / "cd.npy"), "-o", str(dec), "-m", model
    )
    assert code == 0 and "decoded 2 file(s)" in out
    info = sf.info(dec / "song.wav")
    assert (info.frames, info.samplerate) == (1003, 8000)
    # by default the source's rate and exact length come back (cd.wav: 0.1 s at 22.05 kHz)
    info = sf.info(dec / "cd.wav")  # a stereo source gets stereo (the mono model's, copied)
    assert (info.samplerate, info.frames, info.channels) == (22050, 2205, 2)
    stereo = sf.read(dec / "cd.wav")[0]
    assert np.array_equal(stereo[:, 0], stereo[:, 1]) and np.abs(stereo).max() > 0
    code, _, _ = run(
        "decode",
        str(tmp_path / "cd.npy"),
        "-o",
        str(tmp_path / "o.wav"),
        "-m",
        model,
        "--model-rate",
    )
    info = sf.info(tmp_path / "o.wav")
    assert code == 0 and (info.samplerate, info.frames, info.channels) == (8000, 800, 1)


def test_folders_globs_formats_and_bitrate(tmp_path: Path, models: tuple[str, str]) -> None:
    model = models[0]
    (tmp_path / "in" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "in" / "a.wav", _noise(500), 8000)
    sf.write(tmp_path / "in" / "sub" / "b.ogg", _noise(900), 8000)
    (tmp_path / "in" / "notes.txt").write_text("skipped: not an audio extension")
    code, out, _ = run(
        "encode", str(tmp_path / "in"), "-o", str(tmp_path / "tok"), "-m", model, "--bitrate", "8"
    )
    assert code == 0 and "2 codebooks" in out and "8 kbps" in out
    assert read_codes(tmp_path / "tok" / "sub" / "b.npy")[0].shape == (2, 113)
    pattern = str(tmp_path / "in" / "**" / "*.wav")
    code, _, _ = run(
        "encode", pattern, "-o", str(tmp_path / "z"), "-m", model, "--format", "npz", "-k", "1"
    )
    assert code == 0 and sorted(p.name for p in (tmp_path / "z").iterdir()) == ["a.npz"]
    assert read_codes(tmp_path / "z" / "a.npz")[0].shape == (1, 63)
    code, _, _ = run("decode", str(tmp_path / "tok"), "-o", str(tmp_path / "dec"), "-m", model)
    assert code == 0 and sf.info(tmp_path / "dec" / "sub" / "b.wav").frames == 900
    (tmp_path / "void").mkdir()
    code, out, err = run(
        "encode", str(tmp_path / "void"), str(tmp_path / "in" / "a.wav"), "-m", model
    )
    assert code == 1 and err.startswith(f"error: {tmp_path / 'void'}: no matching files")
    assert "encoded 1 file(s), 1 failed" in out
    code, _, err = run("encode", str(tmp_path / "nothing*.wav"), "-m", model)
    assert code == 1 and "no matching files" in err
    np.save(tmp_path / "plain.npy", np.ones((3, 7), np.int64))  # no metadata: T' * hop samples
    code, _, _ = run("decode", str(tmp_path / "plain.npy"), "-m", model)
    assert code == 0 and sf.info(tmp_path / "plain.wav").frames == 56


def test_force(tmp_path: Path, models: tuple[str, str]) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", models[0])[0] == 0
    code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", models[0])
    assert (
        code == 1
        and err.strip()
        == f"error: {tmp_path / 'a.npy'}: output already exists (use --force to overwrite)"
    )
    assert run("encode", str(tmp_path / "a.wav"), "-m", models[0], "--force")[0] == 0
    assert (
        run("decode", str(tmp_path / "a.npy"), "-m", models[0], "-o", str(tmp_path / "a.wav"))[0]
        == 1
    )
    assert (
        run(
            "decode",
            str(tmp_path / "a.npy"),
            "-m",
            models[0],
            "-o",
            str(tmp_path / "a.wav"),
            "--force",
        )[0]
        == 0
    )


def _bad_audio(d: Path) -> dict[str, str]:
    (d / "text.wav").write_text("definitely not audio")
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    sf.write(d / "zero.wav", np.zeros((0, 1), np.float32), 8000)
    nan = _noise(100)
    nan[50] = np.nan
    sf.write(d / "nan.wav", nan, 8000, subtype="FLOAT")
    return {
        "missing.wav": "not found",
        "text.wav": "not a readable audio file",
        "empty.wav": "empty",
        "corrupt.wav": "not a readable audio file",
        "zero.wav": "no samples",
        "nan.wav": "NaN",
    }


def test_bad_audio_one_line_each(tmp_path: Path, models: tuple[str, str]) -> None:
    for name, message in _bad_audio(tmp_path).items():
        code, _, err = run("encode", str(tmp_path / name), "-m", models[0])
        assert code == 1 and "Traceback" not in err, name
        assert err.strip().count("\n") == 0 and err.startswith(f"error: {tmp_path / name}: "), err
        assert message in err, (name, err)
    assert not list(tmp_path.glob("*.npy"))


def test_mixed_folder_goes_on(tmp_path: Path, models: tuple[str, str]) -> None:
    bad = _bad_audio(tmp_path)
    sf.write(tmp_path / "good1.wav", _noise(400), 8000)
    sf.write(tmp_path / "good2.flac", _noise(640), 16000)
    code, out, err = run("encode", str(tmp_path), "-m", models[0])
    assert code == 1 and "encoded 2 file(s), 5 failed" in out
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == ["good1.npy", "good2.npy"]
    lines = err.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("error: ") for line in lines)
    assert {n for n in bad if n != "missing.wav"} == {
        Path(line.split(": ")[1]).name for line in lines
    }


def test_bad_tokens(tmp_path: Path, models: tuple[str, str]) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", models[1])[0] == 0  # other model
    np.save(tmp_path / "float.npy", np.zeros((3, 5), np.float32))
    np.save(tmp_path / "flat.npy", np.zeros(5, np.int64))
    np.save(tmp_path / "range.npy", np.full((3, 5), 16, np.int64))
    np.save(tmp_path / "neg.npy", np.full((3, 5), -1, np.int64))
    np.save(tmp_path / "deep.npy", np.zeros((4, 5), np.int64))
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "empty.npy").write_bytes(b"")
    write_codes(tmp_path / "cut.npy", np.zeros((3, 50), np.int64))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:-20])
    other_id = hub.read_pretrained_info(models[1]).model_id
    cases = {
        "a.npy": other_id,
        "float.npy": "integer",
        "flat.npy": "shape",
        "range.npy": "out of range",
        "neg.npy": "negative",
        "deep.npy": "only 3",
        "junk.npy": "not a valid",
        "empty.npy": "empty",
        "cut.npy": "truncated",
        "missing.npy": "not found",
    }
    for name, message in cases.items():
        code, _, err = run("decode", str(tmp_path / name), "-m", models[0])
        assert code == 1 and "Traceback" not in err and err.strip().count("\n") == 0, (name, err)
        assert err.startswith(f"error: {tmp_path / name}: ") and message in err, (name, err)
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["a.wav"]


def test_bad_options_and_models(tmp_path: Path, models: tuple[str, str]) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    for args, message in [
        (["-m", str(tmp_path / "nope")], "model directory not found"),
        (["-m", models[0], "--bitrate", "1"], "not available"),
        (["-m", models[0], "--bitrate", "4", "-k", "1"], "not both"),
        (["-m", models[0], "--format", "wav"], "npy or npz"),
    ]:
        code, _, err = run("encode", str(tmp_path / "a.wav"), *args)
        assert code == 1 and err.startswith("error: ") and message in err, (args, err)
        assert err.strip().count("\n") == 0


def test_info(models: tuple[str, str]) -> None:
    code, out, _ = run("info", models[0])
    assert code == 0
    for text in ["sample rate:     8000 Hz", "frame rate:      1000 Hz", "hop length:      8", "codebooks:       3",
                 "codebook size:   16", "4, 8, 12 kbps", "LM vocabulary:   48 (3 x 16", "receptive field",
                 "BOS 48, EOS 49, EMPTY 50, MASK 51 (52 in all)",
                 f"model id:        {hub.read_pretrained_info(models[0]).model_id}"]:  # fmt: skip
        assert text in out, text


def test_real_process_exit_codes(tmp_path: Path, models: tuple[str, str]) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", models[0])[0] == 0
    cmd = [sys.executable, "-m", "audiotok", "decode", str(tmp_path / "a.npy"), "-m", models[1]]
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"error: {tmp_path / 'a.npy'}: tokens were made by model")
    assert bad.stderr.count("\n") == 1
