"""Priors over image codes: tokenize images to shards (labels kept), train the image prior
recipes, sample AR and MaskGIT grids with a class and guidance, and the generate command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_image_models import tiny_vqvae
from typer.testing import CliRunner

from audiotok.bulk import tokenize_images
from audiotok.cli import app
from audiotok.data.shards import TokenShards, TokenWindows
from audiotok.errors import UserError
from audiotok.image_generation import bundled_prior_dir, generate_images, sample_image_codes
from audiotok.prior import GPT, GPTConfig, MaskedConfig, MaskedPrior, get_pattern
from audiotok.tokenizer import ImageTokenizer

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _tok() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer(tiny_vqvae(channels=1).eval())


def _images(root: Path, n: int = 12) -> Path:
    """``n`` random 28x28 grey images with labels ``i % 10`` as ``.npz``."""
    rng = np.random.default_rng(0)
    path = root / "images.npz"
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    np.savez(path, images=images, labels=np.arange(n) % 10)
    return path


def _gpt(**kw: object) -> GPT:
    torch.manual_seed(0)
    cfg = dict(
        num_codebooks=1, codebook_size=16, pattern=get_pattern("flatten", 1), block_size=64,
        num_layers=1, num_heads=2, dim=16, num_classes=10, latent_shape=(7, 7),
    )  # fmt: skip
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def _masked(**kw: object) -> MaskedPrior:
    torch.manual_seed(0)
    cfg = dict(
        num_codebooks=1, codebook_size=16, max_positions=50, num_layers=1, num_heads=2, dim=16,
        num_classes=10, latent_shape=(7, 7),
    )  # fmt: skip
    cfg.update(kw)
    return MaskedPrior(MaskedConfig(**cfg)).eval()


def test_tokenize_images_round_trip_keeps_codes_and_labels(tmp_path: Path) -> None:
    tok, src = _tok(), _images(tmp_path)
    res = tokenize_images(tok, [src], tmp_path / "tok", dev_fraction=0.3, batch_size=5)
    assert res.encoded == 12 and res.frames == 12 * 49
    meta = json.loads((tmp_path / "tok" / "meta.json").read_text())["tokenizer"]
    assert meta["modality"] == "image" and meta["latent_shape"] == [7, 7]
    assert meta["order"] == "raster" and meta["model_id"] == tok.model_id
    assert meta["num_codebooks"] == 1 and meta["codebook_size"] == 16
    shards = TokenShards(tmp_path / "tok")
    data = np.load(src)
    expected = tok.encode(torch.from_numpy(data["images"][:, None]).float() / 127.5 - 1)
    by_key = {r["id"]: i for i, r in enumerate(shards.files)}
    assert {r["split"] for r in shards.files} == {"train", "dev"}
    for j in range(12):
        i = by_key[f"images.npz:{j}"]
        assert shards.files[i]["label"] == j % 10
        # raster order: row by row of the (H', W') grid
        np.testing.assert_array_equal(shards.codes(i), expected[j].reshape(1, 49).numpy())
    windows = TokenWindows(shards, 49, train=False, label_field="label")
    codes, label = windows[0]
    assert codes.shape == (1, 49) and label == shards.files[windows.usable[0]]["label"]
    again = tokenize_images(tok, [src], tmp_path / "tok")  # resumed: nothing twice
    assert again.encoded == 0 and again.skipped == 12


@pytest.mark.parametrize("cfg_scale", [1.0, 2.0])
def test_class_conditional_ar_sampling_gives_the_grid(cfg_scale: float) -> None:
    prior = _gpt()
    codes = sample_image_codes(prior, 3, class_label=4, cfg_scale=cfg_scale, seed=1)
    assert codes.shape == (3, 1, 7, 7) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 16
    same = sample_image_codes(prior, 3, class_label=4, cfg_scale=cfg_scale, seed=1)
    assert torch.equal(codes, same)  # seeded


def test_maskgit_sampler_fills_every_mask() -> None:
    prior = _masked()
    codes = sample_image_codes(prior, 4, class_label=1, cfg_scale=2.0, steps=3, seed=0)
    assert codes.shape == (4, 1, 7, 7) and int(codes.min()) >= 0 and int(codes.max()) < 16
    with pytest.raises(UserError, match="needs a ar prior"):
        sample_image_codes(prior, 1, sampler="ar")
    with pytest.raises(UserError, match="--class must be in"):
        sample_image_codes(prior, 1, class_label=10)
    with pytest.raises(UserError, match="--cfg needs --class"):
        sample_image_codes(prior, 1, cfg_scale=2.0)


def test_generate_images_refuses_another_tokenizer() -> None:
    tok = _tok()
    prior = _gpt(tokenizer_id="someone-else")
    with pytest.raises(UserError, match="someone-else"):
        generate_images(tok, prior, 2, class_label=0)
    good = generate_images(tok, _gpt(tokenizer_id=tok.model_id), 2, class_label=0)
    assert good.images.shape == (2, 1, 28, 28) and good.sampler == "ar"


def test_tokenize_train_export_generate_cli(tmp_path: Path) -> None:
    from audiotok.hub import save_pretrained

    tok = _tok()
    save_pretrained(tok.model, tmp_path / "tok_model")
    src = _images(tmp_path, 20)
    res = runner.invoke(
        app, ["tokenize", str(src), "-o", str(tmp_path / "tokens"), "--model",
              str(tmp_path / "tok_model"), "--dev-fraction", "0.3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "7x7" in res.output
    for recipe in ("prior_image_fmnist.yaml", "prior_image_fmnist_maskgit.yaml"):
        run = tmp_path / recipe.split(".")[0]
        sets = [
            f"data.train={tmp_path / 'tokens'}", "optim.max_steps=2", "validation.every=2",
            "checkpoint.every=2", "log.progress=false", "model.config.codebook_size=16",
            "model.config.num_layers=1", "model.config.dim=16", "model.config.num_heads=2",
            "data.batch_size=4",
        ]  # fmt: skip
        args = ["train", str(ROOT / "recipes" / recipe), "--run-dir", str(run)]
        for s in sets:
            args += ["--set", s]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["export", str(run), str(run / "export")])
        assert res.exit_code == 0, res.output
        config = json.loads((run / "export" / "config.json").read_text())["config"]
        assert config["tokenizer_id"] == tok.model_id and config["latent_shape"] == [7, 7]
        sampler = "maskgit" if "maskgit" in recipe else "ar"
        if sampler == "ar":  # image shards are scored per image, given the class
            res = runner.invoke(app, ["eval-prior", str(run / "export"), str(tmp_path / "tokens")])
            assert res.exit_code == 0, res.output
            assert "prior (true class)" in res.output and "| uniform | 196.0 |" in res.output
        grid = tmp_path / f"{sampler}.png"
        gen = ["generate", "--prior", str(run / "export"), "--model", str(tmp_path / "tok_model"),
               "-n", "4", "--class", "3", "--cfg", "2", "--sampler", sampler, "--steps", "3",
               "-o", str(grid)]  # fmt: skip
        res = runner.invoke(app, gen)
        assert res.exit_code == 0, res.output
        from PIL import Image

        assert Image.open(grid).size == (2 + 2 * 30, 2 + 2 * 30)  # 2 x 2 tiles of 28 + pad
        assert len(list((tmp_path / f"{sampler}_codes").glob("sample_*.npy"))) == 4
        res = runner.invoke(app, gen)  # no overwrite without --force
        assert res.exit_code != 0 and "already exists" in res.output
        assert runner.invoke(app, [*gen, "--force"]).exit_code == 0

    other = tmp_path / "other_model"
    torch.manual_seed(1)
    save_pretrained(tiny_vqvae(channels=1, hidden=12), other)
    res = runner.invoke(
        app, ["generate", "--prior", str(tmp_path / "prior_image_fmnist" / "export"),
              "--model", str(other), "--class", "1", "-o", str(tmp_path / "x.png")],
    )  # fmt: skip
    assert res.exit_code != 0 and "trained on codes of model" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()


@pytest.mark.skipif(bundled_prior_dir("fmnist") is None, reason="bundled prior not installed")
def test_bundled_fmnist_prior_generates_from_a_fresh_install(tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    res = runner.invoke(app, ["generate", "--model", "fmnist", "--class", "3", "-o", str(grid)])
    assert res.exit_code == 0, res.output
    assert grid.exists()


def test_prior_task_gives_unlabelled_images_the_null_class() -> None:
    from audiotok.training.prior_task import PriorTask

    task = PriorTask(_gpt(), 0.0, "t", (7, 7))
    codes, labels, _ = task._split(
        (torch.zeros(3, 1, 49, dtype=torch.long), torch.tensor([2, -1, 0]))
    )
    assert codes.shape == (3, 1, 49) and labels.tolist() == [2, 10, 0]
    unconditional = PriorTask(_gpt(num_classes=0), 0.0, "t", (7, 7))
    assert unconditional._split((codes, torch.tensor([1, 2, 3])))[1] is None
    metrics, _ = task.validation_step((codes, torch.tensor([2, -1, 0])))
    assert metrics["uniform_bits_per_image"] == 49 * 4
    assert metrics["bits_per_image"] == pytest.approx(metrics["bits_per_frame"] * 49)


@pytest.mark.skipif(bundled_prior_dir("fmnist") is None, reason="bundled prior not installed")
def test_bundled_fmnist_prior_matches_the_bundled_tokenizer() -> None:
    import audiotok
    from audiotok.prior import load_prior

    prior, tok = load_prior(bundled_prior_dir("fmnist")), audiotok.load("fmnist")
    assert prior.config.tokenizer_id == tok.model_id  # retrain the prior when fmnist changes
    assert tuple(prior.config.latent_shape) == tok.latent_shape(28, 28)
    assert prior.config.codebook_size == tok.codebook_size and prior.config.num_classes == 10
