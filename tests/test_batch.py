"""audiotok.encode_files / decode_files: the CLI's batch behaviour as a library call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audiotok
from audiotok import hub
from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.audio_io import AUDIO_EXTENSIONS
from audiotok.batch import BatchListener, FileResult, error_line, expand_inputs
from audiotok.codes import read_codes
from audiotok.errors import UserError

RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=8000, ratios=(2, 4), encoder_channels=4, latent_dim=8, decoder="seanet",
        decoder_channels=4, quantizer=RVQ,
    )  # fmt: skip
    return str(hub.save_pretrained(SoundStream(config), tmp_path_factory.mktemp("m") / "m"))


def _noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, channels)) * 0.1).astype(np.float32)


class _Log(BatchListener):
    """Record every event, and hand out a progress callback that records too."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.progress: list[tuple[int, int]] = []

    def started(self, total: int) -> None:
        self.events.append(("started", total))

    def file_started(self, source: Path):  # type: ignore[no-untyped-def]
        self.events.append(("file", source.name))
        return lambda done, total: self.progress.append((done, total))

    def file_finished(self, result: FileResult) -> None:
        self.events.append(("ok" if result.ok else "failed", result.source.name))


def test_encode_files_folders_globs_and_bad_files(tmp_path: Path, model: str) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a.wav", _noise(800), 8000)
    sf.write(src / "sub" / "b.flac", _noise(300, channels=2), 16000)
    (src / "sub" / "bad.wav").write_text("not audio")
    log = _Log()
    tok = hub.load(model)
    result = audiotok.encode_files(
        [src, str(tmp_path / "none" / "*.wav")], tok, out=tmp_path / "tokens", listener=log
    )
    # the glob that matched nothing is reported first, then the files in sorted order
    assert log.events == [
        ("failed", "*.wav"),
        ("started", 3),
        ("file", "a.wav"),
        ("ok", "a.wav"),
        ("file", "b.flac"),
        ("ok", "b.flac"),
        ("file", "bad.wav"),
        ("failed", "bad.wav"),
    ]
    assert log.progress and all(0 <= d <= t for d, t in log.progress)
    assert [r.source.name for r in result.done] == ["a.wav", "b.flac"]
    assert [r.output for r in result.done] == [
        tmp_path / "tokens" / "a.npy",
        tmp_path / "tokens" / "sub" / "b.npy",  # input folders are mirrored
    ]
    glob_error, file_error = (r.error or "" for r in result.failed)
    kinds = ", ".join(sorted(AUDIO_EXTENSIONS))
    assert glob_error == f"{tmp_path / 'none' / '*.wav'}: no matching files ({kinds})"
    assert file_error.startswith(f"{src / 'sub' / 'bad.wav'}: ") and "\n" not in file_error
    assert (result.num_codebooks, result.frame_rate, result.bitrate) == (3, 1000.0, 12.0)
    # the totals are those of the files written, and match what the files hold
    codes_a, meta_a = read_codes(tmp_path / "tokens" / "a.npy", tok)
    codes_b, meta_b = read_codes(tmp_path / "tokens" / "sub" / "b.npy", tok)
    assert meta_a is not None and meta_b is not None
    assert result.tokens == codes_a.size + codes_b.size
    assert result.seconds == pytest.approx(800 / 8000 + 300 / 16000)
    assert (meta_b.original_sample_rate, meta_b.original_channels) == (16000, 2)
    # the codes are those of the tokenizer's own file encoder
    direct, _ = tok.encode_file(src / "a.wav")
    assert np.array_equal(codes_a, direct.numpy())


def test_encode_files_names_force_and_formats(tmp_path: Path, model: str) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, _noise(400), 8000)
    first = audiotok.encode_files(wav, model, bitrate=8)  # one path, a model folder, kbps
    assert [r.output for r in first.done] == [tmp_path / "a.npy"] and first.num_codebooks == 2
    again = audiotok.encode_files([wav], model)
    assert not again.done and "--force" in (again.failed[0].error or "")
    assert audiotok.encode_files([wav], model, force=True).done
    one = audiotok.encode_files([wav], model, out=tmp_path / "x.npz", token_format="npz")
    assert [r.output for r in one.done] == [tmp_path / "x.npz"]
    assert np.load(tmp_path / "x.npz", allow_pickle=False)
    # mistakes in the batch itself raise before any file is touched
    sf.write(tmp_path / "b.wav", _noise(400), 8000)
    with pytest.raises(UserError, match="there are 2 inputs"):
        audiotok.encode_files([wav, tmp_path / "b.wav"], model, out=tmp_path / "y.npy")
    with pytest.raises(UserError, match="npy or npz"):
        audiotok.encode_files([wav], model, token_format="pt")
    with pytest.raises(UserError, match="valid bitrates"):
        audiotok.encode_files([wav], model, bitrate=5)
    with pytest.raises(UserError, match="needs a .npz file name"):
        audiotok.encode_files([wav], model, out=tmp_path / "y.npy", token_format="npz")
    assert not (tmp_path / "b.npy").exists() and not (tmp_path / "y.npy").exists()


def test_two_inputs_never_share_an_output(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "a.wav", _noise(400), 8000)
    sf.write(tmp_path / "a.flac", _noise(400, seed=1), 8000)
    result = audiotok.encode_files([tmp_path / "a.flac", tmp_path / "a.wav"], model)
    assert [r.source.name for r in result.done] == ["a.flac"]
    assert "is also written for" in (result.failed[0].error or "")


def test_decode_files_keeps_the_recording(tmp_path: Path, model: str) -> None:
    x = _noise(700, channels=2)
    sf.write(tmp_path / "a.wav", x, 11025)
    recording = (tmp_path / "a.wav").read_bytes()
    assert audiotok.encode_files([tmp_path / "a.wav"], model).done
    result = audiotok.decode_files([tmp_path], model)
    (done,) = result.done
    # a.wav is the recording (not written by audiotok): decode writes a.decoded.wav
    assert done.output == tmp_path / "a.decoded.wav" and done.kept == tmp_path / "a.wav"
    info = sf.info(tmp_path / "a.decoded.wav")
    assert (info.frames, info.samplerate, info.channels) == (700, 11025, 2)
    assert done.seconds == pytest.approx(700 / 11025)
    assert (tmp_path / "a.wav").read_bytes() == recording
    # again: the output exists, and only --force replaces it (never the recording)
    assert "--force" in (audiotok.decode_files([tmp_path / "a.npy"], model).failed[0].error or "")
    forced = audiotok.decode_files([tmp_path / "a.npy"], model, force=True)
    assert [r.output for r in forced.done] == [tmp_path / "a.decoded.wav"]
    assert (tmp_path / "a.wav").read_bytes() == recording
    # the model's rate and channels, into a folder
    model_rate = audiotok.decode_files(
        [tmp_path / "a.npy"], model, out=tmp_path / "o", original_rate=False
    )
    (out,) = model_rate.done
    assert out.output == tmp_path / "o" / "a.wav" and out.kept is None
    assert (sf.info(out.output).samplerate, sf.info(out.output).channels) == (8000, 1)


def test_expand_inputs_skips_temporary_files(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"")
    (tmp_path / ".a.npy.audiotok-tmp-1-2").write_bytes(b"")
    (tmp_path / "b.txt").write_bytes(b"")
    found, failed = expand_inputs([tmp_path, tmp_path / "missing.npy"], frozenset({".npy"}))
    assert found == [
        (tmp_path / "a.npy", Path("a.npy")),
        (tmp_path / "missing.npy", Path("missing.npy")),
    ]
    assert not failed


def test_error_line_is_one_line() -> None:
    assert error_line(UserError("x.wav: bad")) == "x.wav: bad"
    assert error_line(PermissionError(13, "denied", "/a/b")) == "/a/b: permission denied"
    assert error_line(OSError(28, "full"), "x.npy") == "x.npy: disk full (no space left on device)"
    assert error_line(MemoryError(), "x.wav") == "x.wav: out of memory"
    assert error_line(RuntimeError("boom\nmore"), "x.wav") == "x.wav: RuntimeError: boom"


def test_import_audiotok_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, audiotok; audiotok.encode_files; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
