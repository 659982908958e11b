"""Strict frozen configs and an exported model (config JSON + safetensors) reproducing codes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_model, save_model
from tiny_image_models import tiny_vqvae, tiny_vqvae2

from audiotok.image import (
    QUANTIZER_PRESETS,
    ImageCodec,
    ImageVQVAE,
    ImageVQVAE2Config,
    ImageVQVAEConfig,
    quantizer_preset,
)
from audiotok.registry import MODEL_FAMILIES


@pytest.mark.parametrize("cls", [ImageVQVAEConfig, ImageVQVAE2Config])
def test_dict_and_json_round_trip(cls: type) -> None:
    cfg = cls(channels=1, hidden=16, attention=True)
    again = cls.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.to_dict()["quantizer"], dict)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden = 3  # type: ignore[misc]


def test_unknown_and_invalid_values_are_named() -> None:
    with pytest.raises(ValueError, match="unknown ImageVQVAEConfig key.*hiden"):
        ImageVQVAEConfig.from_dict({"hiden": 4})
    with pytest.raises(ValueError, match="channel_mult needs 1 to 4"):
        ImageVQVAEConfig(channel_mult=(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="activation"):
        ImageVQVAEConfig(activation="tanh")
    with pytest.raises(ValueError, match="quantizer"):
        ImageVQVAEConfig(quantizer={"codebook_size": 4})
    with pytest.raises(ValueError, match="hidden"):
        ImageVQVAEConfig(hidden=0)
    with pytest.raises(ValueError, match="attention must be a bool"):
        ImageVQVAEConfig(attention=1)


def test_presets_build_every_variant() -> None:
    for name in QUANTIZER_PRESETS:
        cfg = ImageVQVAEConfig(
            hidden=8, res_hidden=4, latent_dim=8, quantizer=quantizer_preset(name)
        )
        assert ImageVQVAE(cfg).encode(torch.zeros(1, 3, 4, 4)).shape[-2:] == (1, 1)
    assert quantizer_preset("vqvae") is not QUANTIZER_PRESETS["vqvae"]
    with pytest.raises(ValueError, match="unknown variant"):
        quantizer_preset("dalle")


@pytest.mark.parametrize("build", [tiny_vqvae, tiny_vqvae2])
def test_safetensors_export_reproduces_the_codes(tmp_path: Path, build) -> None:  # noqa: ANN001
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    model = build()
    model.train()(x)  # k-means initialised EMA codebooks must travel with the weights
    model.eval()
    (tmp_path / "config.json").write_text(
        json.dumps({"family": model.family, "config": model.config.to_dict()})
    )
    save_model(model, str(tmp_path / "model.safetensors"))

    meta = json.loads((tmp_path / "config.json").read_text())
    cls = MODEL_FAMILIES[meta["family"]]
    loaded = cls(cls.config_class.from_dict(meta["config"]))
    load_model(loaded, str(tmp_path / "model.safetensors"))
    loaded.eval()
    assert isinstance(loaded, ImageCodec) and loaded.config == model.config
    assert torch.equal(loaded.encode(x), model.encode(x))
    torch.testing.assert_close(loaded(x).image, model(x).image, rtol=0, atol=0)


def test_families_registry() -> None:
    assert MODEL_FAMILIES["image_vqvae"] is ImageVQVAE
    assert all(
        cls.family == name
        for name, cls in ((n, c) for n, c in MODEL_FAMILIES.items() if n.startswith("image"))
    )
