"""Every recipe in recipes/ trains two steps (with sizes shrunk and synthetic data)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from audiotok.training.config import config_from_dict
from audiotok.training.trainer import train

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))

#: Per family: model.config values that make any recipe's model tiny (structure kept).
SHRINK = {
    "soundstream": {
        "encoder_channels": 4,
        "latent_dim": 8,
        "decoder_channels": 4,
        "istft_hidden": 16,
        "istft_layers": 1,
    },
    "audio_vqvae": {"hidden": 8, "residual_hidden": 4, "num_residual": 1, "latent_dim": 8},
    "prior_gpt": {"num_layers": 1, "num_heads": 2, "dim": 16, "codebook_size": 16},
    "prior_masked": {"num_layers": 1, "num_heads": 2, "dim": 16, "codebook_size": 16},
    "image_vqvae": {"hidden": 8, "res_hidden": 4, "latent_dim": 8},
    "image_vqvae2": {"hidden": 8, "res_hidden": 4, "latent_dim": 8},
}


def _image_file(root: Path) -> Path:
    """20 random 28x28 grey images as .npy (the image recipes' data)."""
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    path = root / "images.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    return path


def _token_dir(root: Path, num_codebooks: int) -> Path:
    """A token folder of random codes (16 codes per codebook) for the prior recipes."""
    import numpy as np

    from audiotok.data.shards import ShardWriter, TokenizerInfo, write_meta

    info = TokenizerInfo("test", num_codebooks, 16, 75.0)
    writer = ShardWriter(root, info, dev_fraction=0.3)
    rng = np.random.default_rng(0)
    for i in range(12):
        writer.add(f"f{i}", rng.integers(0, 16, (num_codebooks, 200)))
    writer.flush()
    write_meta(root, info)
    return root


def _image_token_dir(root: Path, num_codebooks: int, grid: list[int]) -> Path:
    """Image token shards: 12 random ``grid`` code images of 16 codes, class labels 0..9."""
    import numpy as np

    from audiotok.data.shards import ShardWriter, TokenizerInfo, write_meta

    info = TokenizerInfo("test", num_codebooks, 16, 0.0, "image", tuple(grid), "raster")
    writer = ShardWriter(root, info, dev_fraction=0.3)
    rng = np.random.default_rng(0)
    n = int(np.prod(grid))
    for i in range(12):
        writer.add(f"img{i}", rng.integers(0, 16, (num_codebooks, n)), {"label": i % 10})
    writer.flush()
    write_meta(root, info)
    return root


def _shrink_quantizer(spec: Any) -> Any:
    """Same quantizer types, with at most 2 stages of 16 codes."""
    if isinstance(spec, dict):
        out = {k: _shrink_quantizer(v) for k, v in spec.items()}
        if "codebook_size" in out:
            out["codebook_size"] = 16
        if "num_codebooks" in out:
            out["num_codebooks"] = min(out["num_codebooks"], 2)
        return out
    return spec


def _shrink(recipe: dict[str, Any], train_dir: Path, dev_dir: Path, run_dir: Path) -> dict:
    model = recipe["model"]
    config = model.setdefault("config", {})
    config.update({k: v for k, v in SHRINK[model["family"]].items()})
    if "quantizer" in config:
        config["quantizer"] = _shrink_quantizer(config["quantizer"])
    recipe.pop("init_from", None)  # trained weights do not fit the shrunk model
    data = recipe.setdefault("data", {})
    data.pop("shares", None)  # the synthetic files have no kind
    data.update(
        train=str(train_dir),
        dev=str(dev_dir),
        batch_size=2,
        num_workers=0,
        segment_seconds=0.1,
        examples_per_epoch=4,
    )
    disc = recipe.get("discriminator", {})
    for kind in ("msstft", "mpd"):
        if disc.get(kind) is not None:
            disc[kind].update(filters=2, max_filters=4)
    if disc:
        disc["start_step"] = 1  # both steps: one without, one with the adversary
    recipe.setdefault("optim", {})["max_steps"] = 2
    recipe["checkpoint"] = {"every": 2, "keep_last": 1}
    recipe["log"] = {"every": 1, "tensorboard": False, "progress": False}
    recipe["validation"] = {"every": 2, "num_batches": 1, "num_audio_samples": 1}
    recipe["run_dir"] = str(run_dir)
    return recipe


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_two_steps(path: Path, wav_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    if raw["model"]["family"].startswith("prior"):
        cfg = raw["model"]["config"]
        if cfg.get("cond_shape"):  # VQ-VAE-2's bottom prior: packed two-level rows
            ratio = cfg["latent_shape"][0] // cfg["cond_shape"][0]
            rows = cfg["cond_codebooks"] + ratio * ratio * cfg["num_codebooks"]
            tokens = _image_token_dir(tmp_path / "tokens", rows, cfg["cond_shape"])
        elif cfg.get("latent_shape"):  # a prior over image codes: one image per window
            tokens = _image_token_dir(
                tmp_path / "tokens", cfg["num_codebooks"], cfg["latent_shape"]
            )
        else:
            tokens = _token_dir(tmp_path / "tokens", cfg["num_codebooks"])
        wav_dirs = (tokens, tokens)
    if raw["model"]["family"].startswith("image"):
        images = _image_file(tmp_path / "images")
        wav_dirs = (images, images)
        raw.setdefault("loss", {}).setdefault("image", {})["disc_start"] = 1
    recipe = _shrink(raw, *wav_dirs, tmp_path / "run")
    result = train(config_from_dict(recipe, path.name))
    assert result.step == 2
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2]
    # a non-finite loss is logged as the string "nan" / "inf", so check type and value
    assert all(isinstance(r["total"], float) and math.isfinite(r["total"]) for r in train_rows)
    val = [r for r in rows if r["split"] == "val"]
    if raw["model"]["family"].startswith("image"):
        assert len(val) == 1 and 0.0 < val[0]["psnr"] < 60.0 and 0.0 < val[0]["code_share"] <= 1
        if recipe.get("discriminator", {}).get("enabled", True):
            assert "disc" in train_rows[1] and "disc" not in train_rows[0]
        assert (tmp_path / "run" / "samples" / "step_2" / "grid.png").exists()
        return
    if raw["model"]["family"].startswith("prior"):
        # random codes of 16 values: every codebook near log2(16) = 4 bits, kbps vs raw
        assert len(val) == 1 and 3.0 < val[0]["bits/0"] < 5.0
        if raw["model"]["config"].get("latent_shape"):  # images: bits against the uniform
            n = math.prod(raw["model"]["config"]["latent_shape"])
            assert val[0]["uniform_bits_per_image"] == pytest.approx(n * 4)
            return
        assert val[0]["kbps"] == pytest.approx(val[0]["bits_per_frame"] * 75 / 1000)
        return
    assert len(val) == 1 and "mel" in val[0]
    samples = tmp_path / "run" / "samples" / "step_2"
    assert {p.name for p in samples.iterdir()} == {"0_ref.wav", "0_rec.wav", "0_spec.png"}
    if recipe.get("discriminator", {}).get("enabled", True):
        assert "disc" in train_rows[1] and "disc" not in train_rows[0]


@pytest.mark.parametrize("stem", ["default_v2_tune_24k", "default_v2_decoder_24k"])
def test_tune_recipe_is_the_bundled_model(stem: str) -> None:
    # the fine-tune recipes start from the bundled default: their model must be the shipped one
    from audiotok.hub import load_pretrained, resolve_model
    from audiotok.registry import build_model
    from audiotok.statedict import load_state_strict

    path = next(p for p in RECIPES if p.stem == stem)
    raw = yaml.safe_load(path.read_text())
    assert raw["init_from"] == "default"
    model = build_model(raw["model"]["family"], raw["model"]["config"])
    bundled = load_pretrained(resolve_model("default"))
    load_state_strict(model, bundled.state_dict(), "the tune recipe is not the bundled model")
    wav = torch.randn(1, 1, 4800) * 0.1
    with torch.no_grad():
        assert torch.equal(model.eval().encode(wav), bundled.encode(wav))
    # ... and its discriminators are the ones shipped beside it (init_from takes both)
    from safetensors.torch import load_file

    from audiotok.training.build import task_builder

    raw["data"] = {"train": "unused"}
    disc = task_builder("soundstream").build_discriminator(config_from_dict(raw), model)
    saved = load_file(str(resolve_model("default") / "discriminator.safetensors"))
    load_state_strict(disc, saved, "the bundled discriminators do not fit the tune recipe")
