"""Frozen codec configs: JSON round trip, strict keys, value validation, defaults."""

from __future__ import annotations

import dataclasses
import json

import pytest

from audiotok.audio import AudioVQVAE, AudioVQVAEConfig, SoundStream, SoundStreamConfig


@pytest.mark.parametrize(
    "config",
    [
        SoundStreamConfig(),
        SoundStreamConfig(ratios=(4, 4, 5), dilations=(1, 3, 9), decoder="seanet", causal=True),
        AudioVQVAEConfig(),
        AudioVQVAEConfig(ratios=[4, 2], quantizer={"type": "fsq", "levels": [5, 5, 5]}),
    ],
)
def test_round_trip_through_json(config) -> None:
    d = json.loads(json.dumps(config.to_dict()))
    back = type(config).from_dict(d)
    assert back == config
    assert isinstance(back.ratios, tuple)
    # to_dict hands out copies: mutating them cannot change the frozen config
    d2 = config.to_dict()
    d2["quantizer"]["type"] = "identity"
    assert config.quantizer["type"] != "identity"


def test_unknown_key_is_rejected_by_name() -> None:
    d = SoundStreamConfig().to_dict()
    d["hop_lenght"] = 320
    with pytest.raises(ValueError, match="hop_lenght"):
        SoundStreamConfig.from_dict(d)
    with pytest.raises(ValueError, match="n_q"):
        AudioVQVAEConfig.from_dict({"n_q": 4})
    with pytest.raises(ValueError):
        SoundStreamConfig.from_dict([("ratios", [2])])


def test_missing_keys_keep_defaults_and_config_is_frozen() -> None:
    config = SoundStreamConfig.from_dict({"causal": True})
    assert config.causal and config.ratios == (2, 4, 5, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.causal = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"decoder": "hifigan"},
        {"activation": "swish"},
        {"ratios": (2, 0)},
        {"ratios": ()},
        {"channels": 0},
        {"latent_dim": 1.5},
        {"pad_mode": "circular"},
        {"quantizer": {"codebook_size": 4}},
        {"n_fft": 100},
    ],
)
def test_invalid_soundstream_values(kwargs) -> None:
    with pytest.raises(ValueError):
        SoundStreamConfig(**kwargs)


def test_invalid_vqvae_values_and_quantizer_spec() -> None:
    with pytest.raises(ValueError):
        AudioVQVAEConfig(num_residual=-1)
    with pytest.raises(ValueError, match="codebook_sise"):
        AudioVQVAE(AudioVQVAEConfig(quantizer={"type": "vq", "codebook_sise": 4}))


def test_default_soundstream_is_24khz_75hz_6kbps() -> None:
    codec = SoundStream()
    assert codec.sample_rate == 24000 and codec.hop_length == 320
    assert codec.frame_rate == 75.0
    assert (codec.num_codebooks, codec.codebook_size) == (8, 1024)
    assert codec.bitrate == pytest.approx(6.0)  # kbps
    assert [codec.bitrate_for(k) for k in (2, 4, 8)] == pytest.approx([1.5, 3.0, 6.0])
    assert codec.receptive_field > codec.hop_length
    vqvae = AudioVQVAE()
    assert vqvae.hop_length == 64 and vqvae.num_codebooks == 1 and vqvae.codebook_size == 512
