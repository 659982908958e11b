"""Exported models: save/load reproduces the codes exactly; every bad folder is a UserError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from audiotok import hub
from audiotok.audio import AudioVQVAE, AudioVQVAEConfig, SoundStream, SoundStreamConfig
from audiotok.errors import UserError
from audiotok.tokenizer import AudioTokenizer

RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


def tiny_soundstream(decoder: str = "seanet", seed: int = 0) -> SoundStream:
    torch.manual_seed(seed)
    config = SoundStreamConfig(
        sample_rate=8000,
        ratios=(2, 4),
        encoder_channels=4,
        latent_dim=8,
        decoder=decoder,
        decoder_channels=4,
        istft_hidden=8,
        istft_layers=1,
        quantizer=RVQ,
    )
    return SoundStream(config)


def test_round_trip_reproduces_codes_and_id(tmp_path: Path) -> None:
    model = tiny_soundstream("istft")
    wav = torch.randn(2, 1, 700)
    dest = hub.save_pretrained(model, tmp_path / "m")
    info = json.loads((dest / "config.json").read_text())
    assert set(info) == {"family", "audiotok_version", "format_version", "model_id", "config"}
    assert info["format_version"] == hub.FORMAT_VERSION
    assert info["family"] == "soundstream" and info["config"] == model.config.to_dict()
    assert info["model_id"] == hub.model_id_for(model)
    loaded = hub.load_pretrained(dest)
    assert isinstance(loaded, SoundStream) and not loaded.training
    assert torch.equal(loaded.encode(wav), model.eval().encode(wav))
    assert torch.equal(loaded.decode(loaded.encode(wav)), model.decode(model.encode(wav)))
    assert hub.model_id_for(loaded) == info["model_id"]
    tok = hub.load(dest)
    assert isinstance(tok, AudioTokenizer) and tok.model_id == info["model_id"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folders left


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_export_is_the_rounded_model(tmp_path: Path, dtype: torch.dtype) -> None:
    model = tiny_soundstream("istft").eval()
    full = hub.save_pretrained(model, tmp_path / "full")
    half = hub.save_pretrained(model, tmp_path / "half", dtype=dtype)
    size = (half / "model.safetensors").stat().st_size
    assert size < 0.65 * (full / "model.safetensors").stat().st_size
    loaded = hub.load_pretrained(half)
    # loading casts back: a float32 model whose weights are the rounded ones
    for name, t in loaded.state_dict().items():
        ref = model.state_dict()[name]
        assert t.dtype == ref.dtype, name
        if t.is_floating_point():
            assert torch.equal(t, ref.to(dtype).to(ref.dtype)), name
    info = json.loads((half / "config.json").read_text())
    assert info["model_id"] == hub.model_id_for(loaded) != hub.model_id_for(model)
    # re-exporting the loaded model at the same precision changes nothing
    again = hub.save_pretrained(loaded, tmp_path / "again", dtype=dtype)
    assert json.loads((again / "config.json").read_text())["model_id"] == info["model_id"]
    wav = torch.randn(1, 1, 800)
    torch.testing.assert_close(loaded(wav).audio, model(wav).audio, rtol=0.05, atol=0.05)


def test_half_precision_export_refuses_overflow(tmp_path: Path) -> None:
    model = tiny_soundstream("istft")
    with torch.no_grad():
        next(model.parameters()).fill_(1e6)
    with pytest.raises(UserError, match="overflow"):
        hub.save_pretrained(model, tmp_path / "m", dtype=torch.float16)
    assert not (tmp_path / "m").exists()


def test_model_id_tracks_weights() -> None:
    a, b = tiny_soundstream(seed=0), tiny_soundstream(seed=1)
    assert hub.model_id_for(a) == hub.model_id_for(tiny_soundstream(seed=0))
    assert hub.model_id_for(a) != hub.model_id_for(b)
    assert len(hub.model_id_for(a)) == 12


def test_vqvae_family_and_custom_id(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = AudioVQVAEConfig(
        sample_rate=8000, ratios=(2, 2), hidden=8, residual_hidden=4, num_residual=1, latent_dim=4
    )
    model = AudioVQVAE(config).eval()
    dest = hub.save_pretrained(model, tmp_path / "v", model_id="my-vqvae")
    tok = hub.load(dest)
    assert tok.model_id == "my-vqvae" and tok.family == "audio_vqvae"
    wav = torch.randn(1, 1, 300)
    assert torch.equal(tok.model.encode(wav), model.encode(wav))


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first, second = tiny_soundstream(seed=0), tiny_soundstream(seed=1)
    dest = hub.save_pretrained(first, tmp_path / "m")
    with pytest.raises(UserError, match="already holds an exported model"):
        hub.save_pretrained(second, dest)
    assert hub.read_pretrained_info(dest).model_id == hub.model_id_for(first)
    hub.save_pretrained(second, dest, force=True)
    assert hub.read_pretrained_info(dest).model_id == hub.model_id_for(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    (tmp_path / "empty").mkdir()
    hub.save_pretrained(first, tmp_path / "empty")  # an empty folder is fine


def _corrupt(dest: Path, case: str) -> None:
    config = dest / "config.json"
    info = json.loads(config.read_text())
    if case == "no config":
        config.unlink()
    elif case == "bad json":
        config.write_text("{not json")
    elif case == "not an object":
        config.write_text("[1, 2]")
    elif case == "unknown family":
        config.write_text(json.dumps({**info, "family": "wavenet"}))
    elif case == "unknown key":
        config.write_text(json.dumps({**info, "config": {**info["config"], "bogus": 1}}))
    elif case == "no weights":
        (dest / "model.safetensors").unlink()
    elif case == "corrupt weights":
        (dest / "model.safetensors").write_bytes(b"\x00" * 50)
    elif case == "other shapes":
        wide = {**info["config"], "latent_dim": 16}
        config.write_text(json.dumps({**info, "config": wide}))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no config", "missing"),
        ("bad json", "corrupt config"),
        ("not an object", "corrupt config"),
        ("unknown family", "unknown model family 'wavenet'"),
        ("unknown key", "bogus"),
        ("no weights", "missing"),
        ("corrupt weights", "do not load"),
        ("other shapes", r"do not fit the soundstream config: shape encoder\.\S+: saved"),
    ],
)
def test_bad_model_folders(tmp_path: Path, case: str, message: str) -> None:
    dest = hub.save_pretrained(tiny_soundstream(), tmp_path / "m")
    _corrupt(dest, case)
    with pytest.raises(UserError, match=message) as info:
        hub.load(dest)
    assert "\n" not in str(info.value)


def test_missing_folder_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="not found"):
        hub.load_pretrained(tmp_path / "nope")
    monkeypatch.setattr(hub, "DEFAULT_MODEL_DIR", tmp_path / "pretrained" / "default")
    with pytest.raises(UserError, match="default model is not installed"):
        hub.load("default")
    src = hub.save_pretrained(tiny_soundstream(), tmp_path / "m")
    shutil.copytree(src, hub.DEFAULT_MODEL_DIR)
    assert hub.load().model_id == hub.read_pretrained_info(src).model_id


def test_unregistered_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a registered"):
        hub.save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")  # type: ignore[arg-type]


def test_export_is_readable_by_others(tmp_path: Path) -> None:
    # a private 0700/0600 export could not be packaged or shared
    import os
    import stat

    umask = os.umask(0o022)
    try:
        dest = hub.save_pretrained(tiny_soundstream("istft"), tmp_path / "m")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    for f in dest.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name
