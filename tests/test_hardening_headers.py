"""Issue 11: trust no header. Token-file trailers, audio headers, model configs and API
arguments are checked before they size an allocation or an output."""

from __future__ import annotations

import dataclasses
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiotok import hub
from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.cli import app
from audiotok.codes import MAGIC, CodesMeta, read_codes, write_codes
from audiotok.errors import UserError
from audiotok.tokenizer import AudioTokenizer

RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


def _config() -> SoundStreamConfig:
    return SoundStreamConfig(
        sample_rate=8000, ratios=(2, 4), encoder_channels=4, latent_dim=8, decoder="seanet",
        decoder_channels=4, quantizer=RVQ,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    return str(hub.save_pretrained(SoundStream(_config()), tmp_path_factory.mktemp("m") / "m"))


@pytest.fixture(scope="module")
def tok(model: str) -> AudioTokenizer:
    return hub.load(model)


def _noise(n: int, channels: int = 1) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((n, channels)) * 0.1).astype(np.float32)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _with_trailer(path: Path, meta: dict | bytes) -> Path:
    """Rewrite ``path``'s trailer with ``meta`` (a dict as JSON, or raw bytes)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[-len(MAGIC) - 8 : -len(MAGIC)])
    body = data[: -len(MAGIC) - 8 - n]
    blob = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    path.write_bytes(body + blob + struct.pack("<Q", len(blob)) + MAGIC)
    return path


# ---- token files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"original_length": 0}, "original_length 0"),
        ({"original_length": 10_000_000}, "original_length 10000000"),
        ({"length": 10**12}, "length 1000000000000"),
        ({"original_sample_rate": 500_000}, "outside 1000..384000"),
        ({"original_sample_rate": 0}, "outside 1000..384000"),
        ({"original_channels": 0}, "original_channels 0"),
        ({"original_channels": 10**6}, "original_channels 1000000"),
        ({"hop_length": 0}, "hop_length 0"),
        ({"original_length": 1.5}, "bad value"),
        ({"sample_rate": float("nan")}, "bad value"),
    ],
)
def test_crafted_trailer_is_refused(
    tmp_path: Path, model: str, tok: AudioTokenizer, change: dict, words: str
) -> None:
    sf.write(tmp_path / "a.wav", _noise(800), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", model)[0] == 0
    meta = read_codes(tmp_path / "a.npy")[1]
    assert meta is not None
    _with_trailer(tmp_path / "a.npy", {**meta.to_dict(), **change})
    with pytest.raises(UserError, match="corrupt token file metadata") as info:
        read_codes(tmp_path / "a.npy", tok)
    assert words in str(info.value)
    code, _, err = run(
        "decode", str(tmp_path / "a.npy"), "-m", model, "-o", str(tmp_path / "o.wav")
    )
    assert code == 1 and err.startswith(f"error: {tmp_path / 'a.npy'}: corrupt token file")
    assert err.strip().count("\n") == 0 and not (tmp_path / "o.wav").exists()


def test_trailer_size_is_capped_and_deep_json_is_a_user_error(tmp_path: Path) -> None:
    good = CodesMeta(
        model_id="m", family="soundstream", audiotok_version="0", sample_rate=8000,
        frame_rate=1000.0, hop_length=8, channels=1, num_codebooks=2, codebook_size=16,
        length=24, original_sample_rate=8000, original_length=24, original_channels=1,
    )  # fmt: skip
    path = write_codes(tmp_path / "a.npy", np.zeros((2, 3), np.int64), good)
    big = json.dumps(good.to_dict()).encode() + b" " * (1 << 17)  # valid JSON, 128 KiB
    _with_trailer(path, big)
    with pytest.raises(UserError, match="at most 65536"):
        read_codes(path)
    _with_trailer(path, b"[" * 100_000 + b"]" * 100_000)  # RecursionError in json
    with pytest.raises(UserError, match="corrupt token file metadata"):
        read_codes(path)
    # a trailer announcing 2**60 bytes
    data = path.read_bytes()
    path.write_bytes(data[: -len(MAGIC) - 8] + struct.pack("<Q", 1 << 60) + MAGIC)
    with pytest.raises(UserError, match="corrupt token file metadata"):
        read_codes(path)


def test_crafted_npz_cannot_allocate(tmp_path: Path) -> None:
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 3), np.uint16))
    header["shape"] = (1 << 20, 1 << 20)  # announces 2 TiB
    raw = bytearray()
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    raw += buf.getvalue() + b"\0" * 12
    with zipfile.ZipFile(tmp_path / "a.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("codes.npy", bytes(raw))
    with pytest.raises(UserError, match="a token file holds at most"):
        read_codes(tmp_path / "a.npz")


def test_optional_metadata_fields_parse() -> None:
    @dataclasses.dataclass(frozen=True)
    class Newer(CodesMeta):
        note: str | None = None

    d = {
        "model_id": "m", "family": "f", "audiotok_version": "0", "sample_rate": 8000,
        "frame_rate": 1000, "hop_length": 8, "channels": 1, "num_codebooks": 2,
        "codebook_size": 16, "length": 24, "original_sample_rate": 8000,
        "original_length": 24, "original_channels": 1,
    }  # fmt: skip
    assert Newer.from_dict({**d, "note": None}).note is None
    assert Newer.from_dict({**d, "note": "hi"}).note == "hi"
    assert Newer.from_dict(d).frame_rate == 1000.0
    with pytest.raises(ValueError, match="note"):
        Newer.from_dict({**d, "note": 3})


# ---- audio headers ------------------------------------------------------------------------


def _wav_with_rate(path: Path, rate: int, frames: int = 4000) -> Path:
    sf.write(path, _noise(frames), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    struct.pack_into("<II", data, 24, rate, rate * 2)  # fmt chunk: rate, byte rate
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate", [1, 100, 999, 500_000])
def test_audio_rate_outside_the_range_is_refused(
    tmp_path: Path, model: str, tok: AudioTokenizer, rate: int
) -> None:
    path = _wav_with_rate(tmp_path / "a.wav", rate)
    with pytest.raises(UserError, match=r"sample rate .* outside the supported 1000\.\.384000"):
        tok.encode_file(path)
    code, _, err = run("encode", str(path), "-m", model)
    assert code == 1 and err.startswith(f"error: {path}: sample rate {rate} Hz")
    assert not (tmp_path / "a.npy").exists()


def test_upsampling_blocks_stay_bounded(tmp_path: Path) -> None:
    from audiotok.audio_io import AudioReader

    sf.write(tmp_path / "a.wav", _noise(20_000), 1000)
    with AudioReader(tmp_path / "a.wav", 48_000, 1, block_frames=4096) as reader:
        sizes = [b.shape[-1] for b in reader.blocks()]
    assert max(sizes) <= 4096 * 48 // 4  # fewer input frames per block (was 4096 x 48 out)
    assert abs(sum(sizes) - 20_000 * 48) <= 48


def test_many_channels_stay_bounded(tmp_path: Path) -> None:
    from audiotok.audio_io import AudioReader

    sf.write(tmp_path / "a.wav", np.zeros((5000, 64), np.float32), 8000, subtype="PCM_16")
    with AudioReader(tmp_path / "a.wav", 8000, 1, block_frames=4096) as reader:
        assert reader.block_frames * 64 <= 2 * 4096
        total = sum(b.shape[-1] for b in reader.blocks())
    assert total == 5000


def test_truncated_audio_warns_with_both_counts(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "full.wav", _noise(10_000), 8000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 2 * 4000])  # header still says 10000
    tok = hub.load(model)
    with pytest.warns(UserWarning, match="announces 10000 frames but only 4000 are present"):
        _, meta = tok.encode_file(tmp_path / "cut.wav")
    assert meta.original_length == 4000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok.encode_file(tmp_path / "full.wav")  # no warning for a whole file
    code, out, err = run("encode", str(tmp_path / "cut.wav"), "-m", model)
    assert code == 0 and "encoded 1 file(s)" in out
    assert err.strip() == (
        f"warning: {tmp_path / 'cut.wav'}: file is truncated: the header announces "
        "10000 frames but only 4000 are present"
    )


# ---- model folders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("quantizer.stage.codebook_size", 10**12, "out of range"),
        ("latent_dim", 10**9, "out of range"),
        ("quantizer.num_codebooks", 10**6, "out of range"),
        ("latent_dim", 100_000, "describes a model of"),
    ],
)
def test_absurd_config_fails_before_allocating(
    tmp_path: Path, model: str, key: str, value: int, words: str
) -> None:
    dest = tmp_path / "m"
    dest.mkdir()
    for f in Path(model).iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    raw = json.loads((dest / "config.json").read_text())
    node = raw["config"]
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    (dest / "config.json").write_text(json.dumps(raw))
    with pytest.raises(UserError, match=words):
        hub.load(dest)
    code, _, err = run("info", str(dest))
    assert code == 1 and err.startswith(f"error: {dest / 'config.json'}: ") and words in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"config": {}, "pad": "' + "x" * (2 << 20) + '"}', "larger than"),
    ],
)
def test_crafted_config_json_is_one_line(tmp_path: Path, model: str, text: str, words: str) -> None:
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "config.json").write_text(text)
    (dest / "model.safetensors").write_bytes((Path(model) / "model.safetensors").read_bytes())
    with pytest.raises(UserError, match=words):
        hub.load(dest)
    code, _, err = run("info", str(dest))
    assert code == 1 and err.startswith(f"error: {dest / 'config.json'}: corrupt config")


# ---- the Python API -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -8000, float("nan"), True, 8000.5, 10**9, "8000", None])
def test_api_sample_rate_is_validated(tok: AudioTokenizer, rate: object) -> None:
    wav = np.zeros((1, 400), np.float32)
    if rate is None:  # the model's rate
        assert tok.encode(wav, rate).shape == (1, 3, 50)
        return
    with pytest.raises(UserError, match="sample_rate must be a whole number of Hz"):
        tok.encode(wav, rate)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="sample_rate must be a whole number of Hz"):
        tok.decode_to_file(np.zeros((3, 5), np.int64), "/nonexistent/x.wav", sample_rate=rate)  # type: ignore[arg-type]


def test_api_accepts_numpy_integers(tok: AudioTokenizer) -> None:
    wav = _noise(800).T
    ref = tok.encode(wav, 16000)
    assert torch.equal(tok.encode(wav, np.int64(16000)), ref)
    assert torch.equal(tok.encode(wav, np.int32(16000), num_codebooks=np.int64(2)), ref[:, :2])
    assert torch.equal(tok.encode(wav, 16000.0), ref)


@pytest.mark.parametrize("wav", [[[0.0, 0.1], [0.2]], "audio", None, {"a": 1}])
def test_api_bad_inputs_are_user_errors(tok: AudioTokenizer, wav: object) -> None:
    with pytest.raises(UserError):
        tok.encode(wav)
    with pytest.raises(UserError):
        tok.decode(wav)


def test_decode_without_length_gives_every_frame(tok: AudioTokenizer) -> None:
    # 1003 samples -> ceil(1003 / 8) = 126 frames; without a length: 126 * 8 = 1008 samples
    codes = tok.encode(_noise(1003).T)
    assert codes.shape[-1] == 126
    full = tok.decode(codes)
    assert full.shape == (1, 1, 126 * tok.hop_length)
    cut = tok.decode(codes, length=1003)
    assert cut.shape == (1, 1, 1003) and torch.equal(full[..., :1003], cut)
    with pytest.raises(UserError, match="does not fit"):
        tok.decode(codes, length=1009)
    with pytest.raises(UserError, match="length must be"):
        tok.decode(codes, length=[1.5])


def test_decode_to_file_refuses_absurd_lengths(tmp_path: Path, tok: AudioTokenizer) -> None:
    codes = np.zeros((3, 5), np.int64)  # 40 samples at 8 kHz
    for length in (0, 10**12, True):
        with pytest.raises(UserError, match="length"):
            tok.decode_to_file(codes, tmp_path / "a.wav", length=length)
    assert not list(tmp_path.iterdir())
    tok.decode_to_file(codes, tmp_path / "a.wav", length=40, channels=2)
    info = sf.info(tmp_path / "a.wav")
    assert (info.frames, info.channels) == (40, 2)
