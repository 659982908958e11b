"""VQ-VAE-2's two priors: a top prior, then a bottom prior conditioned on the whole top grid
(audiotok/prior/condition.py): packing, conditioning, causality, sampling and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_image_models import tiny_vqvae2
from typer.testing import CliRunner

from audiotok.cli import app
from audiotok.errors import UserError
from audiotok.image_generation import generate_images, sample_two_level_codes
from audiotok.prior import GPT, GPTConfig, get_pattern
from audiotok.prior.condition import pack_levels, split_packed_levels
from audiotok.training.prior_task import PriorTask

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _bottom(**kw: object) -> GPT:
    torch.manual_seed(0)
    cfg = dict(
        num_codebooks=2, codebook_size=16, pattern=get_pattern("flatten", 2), block_size=128,
        num_layers=1, num_heads=2, dim=16, num_classes=10, latent_shape=(8, 8),
        cond_codebooks=1, cond_codebook_size=16, cond_shape=(4, 4), cond_layers=1,
    )  # fmt: skip
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def _top(**kw: object) -> GPT:
    torch.manual_seed(1)
    cfg = dict(
        num_codebooks=1, codebook_size=16, pattern=get_pattern("flatten", 1), block_size=16,
        num_layers=1, num_heads=2, dim=16, num_classes=10, latent_shape=(4, 4),
    )  # fmt: skip
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def test_split_and_pack_follow_the_models_packed_layout() -> None:
    model = tiny_vqvae2(channels=1).eval()
    top = torch.randint(0, 16, (3, 1, 4, 4))
    bottom = torch.randint(0, 16, (3, 2, 8, 8))
    packed = model.pack_codes(top, bottom)  # (3, 9, 4, 4): the tokenizer's codes
    raster = packed.reshape(3, 9, 16)  # as image token shards store them
    t, b = split_packed_levels(raster, 1, (4, 4), 2)
    assert torch.equal(t, top)
    assert torch.equal(b, bottom.reshape(3, 2, 64))  # the bottom grid in raster order
    assert torch.equal(pack_levels(t, b, 2), packed)
    with pytest.raises(ValueError, match="packed codes"):
        split_packed_levels(raster[:, :8], 1, (4, 4), 2)


def test_conditioning_reaches_every_position_and_stays_causal() -> None:
    prior = _bottom()
    codes = torch.randint(0, 16, (2, 2, 64))
    top = torch.randint(0, 16, (2, 1, 4, 4))
    base = prior(prior.config.pattern.build(codes)[0], cond=top)
    # the last top cell changes the first bottom position's logits: the conditioning sees the
    # whole top grid, not only the cells before it in raster order
    other = top.clone()
    other[:, 0, 3, 3] = (other[:, 0, 3, 3] + 1) % 16
    changed = prior(prior.config.pattern.build(codes)[0], cond=other)
    assert not torch.allclose(base[:, :, 0], changed[:, :, 0])
    # causal in the bottom codes: changing step s changes no logits at steps <= s
    seq = prior.config.pattern.build(codes)[0]
    s = 37
    seq2 = seq.clone()
    seq2[:, :, s] = (seq2[:, :, s] + 1) % 16
    after = prior(seq2, cond=top)
    assert torch.allclose(base[:, :, : s + 1], after[:, :, : s + 1], atol=1e-6)
    assert not torch.allclose(base[:, :, s + 1], after[:, :, s + 1])


def test_greedy_generation_is_the_argmax_of_the_forward_pass() -> None:
    prior = _bottom()
    top = torch.randint(0, 16, (3, 1, 4, 4))
    labels = torch.tensor([0, 4, 9])
    drawn = prior.generate(64, class_labels=labels, cond=top, temperature=0)
    plain = prior.generate(64, class_labels=labels, cond=top, temperature=0, use_cache=False)
    assert torch.equal(drawn, plain)
    logits = prior(prior.config.pattern.build(drawn)[0], labels, cond=top)
    seq = prior.config.pattern.build(drawn)[0]
    got = torch.stack([logits[:, k].argmax(-1) for k in range(2)], 1)
    mask = prior.config.pattern.build(drawn)[1]
    assert torch.equal(got[:, mask], seq[:, mask])
    # guided sampling uses the top grid in both halves and keeps the shape
    guided = prior.generate(64, class_labels=labels, cond=top, cfg_scale=2.0, temperature=0)
    assert guided.shape == (3, 2, 64)


def test_conditioned_prior_refuses_missing_cond_prompts_and_partial_grids() -> None:
    prior = _bottom()
    codes = torch.randint(0, 16, (2, 2, 64))
    top = torch.randint(0, 16, (2, 1, 4, 4))
    with pytest.raises(ValueError, match="pass cond"):
        prior.loss(codes)
    with pytest.raises(ValueError, match="whole"):
        prior.loss(codes[..., :32], cond=top)
    with pytest.raises(ValueError, match="whole"):
        prior.generate(64, prompt=codes[..., :4], cond=top)
    with pytest.raises(ValueError, match="conditioning codes must be"):
        prior.loss(codes, cond=top[:, :, :2])
    with pytest.raises(ValueError, match="not conditioned"):
        _top().loss(torch.zeros(2, 1, 16, dtype=torch.long), cond=top)
    with pytest.raises(ValueError, match="multiple"):
        _bottom(latent_shape=(8, 6))


def test_bottom_prior_learns_from_the_top_grid() -> None:
    # synthetic levels where each bottom code is its top cell's code: a prior that uses the
    # conditioning learns it to near-zero bits; without the top grid it cannot beat log2 16
    torch.manual_seed(0)
    prior = _bottom(num_codebooks=1, pattern=get_pattern("flatten", 1), block_size=64)
    prior.train()
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for _ in range(150):
        top = torch.randint(0, 16, (32, 1, 4, 4))
        bottom = top.repeat_interleave(2, 2).repeat_interleave(2, 3).reshape(32, 1, 64)
        loss, _ = prior.loss(bottom, cond=top)
        opt.zero_grad()
        loss.backward()
        opt.step()
    prior.eval()
    top = torch.randint(0, 16, (64, 1, 4, 4))
    bottom = top.repeat_interleave(2, 2).repeat_interleave(2, 3).reshape(64, 1, 64)
    with torch.no_grad():
        bits = float(prior.loss(bottom, cond=top)[0]) / np.log(2)
    assert bits < 0.5, bits  # uniform: 4 bits per code


def test_prior_task_splits_packed_rows_into_cond_and_codes() -> None:
    prior = _bottom()
    top = torch.randint(0, 16, (3, 1, 4, 4))
    bottom = torch.randint(0, 16, (3, 2, 64))
    packed = pack_levels(top, bottom, 2).reshape(3, 9, 16)
    task = PriorTask(prior, 0.0, "t", (8, 8), 64)
    codes, labels, extra = task._split((packed, torch.tensor([1, -1, 2])))
    assert torch.equal(codes, bottom) and torch.equal(extra["cond"], top)
    assert labels.tolist() == [1, 10, 2]
    metrics, _ = task.validation_step((packed, torch.tensor([1, -1, 2])))
    assert metrics["uniform_bits_per_image"] == 64 * 2 * 4
    assert metrics["bits_per_image"] == pytest.approx(metrics["bits_per_frame"] * 64)


def test_two_level_sampling_packs_the_top_prior_codes() -> None:
    top_prior, bottom_prior = _top(), _bottom()
    codes = sample_two_level_codes(top_prior, bottom_prior, 3, class_label=2, seed=5)
    again = sample_two_level_codes(top_prior, bottom_prior, 3, class_label=2, seed=5)
    assert codes.shape == (3, 9, 4, 4) and torch.equal(codes, again)
    # the top rows are what the top prior draws alone with the same seed
    from audiotok.image_generation import sample_image_codes

    alone = sample_image_codes(top_prior, 3, class_label=2, seed=5)
    assert torch.equal(codes[:, :1], alone)
    with pytest.raises(UserError, match="top prior"):
        sample_two_level_codes(bottom_prior, bottom_prior, 1)
    with pytest.raises(UserError, match="conditioned on"):
        sample_two_level_codes(_top(codebook_size=32), bottom_prior, 1)


def _images(root: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(0)
    path = root / "images.npz"
    np.savez(
        path, images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), labels=np.arange(n) % 10
    )
    return path


def test_vqvae2_recipes_tokenize_train_export_generate_cli(tmp_path: Path) -> None:
    from audiotok.hub import save_pretrained

    torch.manual_seed(0)
    model = tiny_vqvae2(channels=1).eval()
    save_pretrained(model, tmp_path / "m")
    res = runner.invoke(
        app, ["tokenize", str(_images(tmp_path)), "-o", str(tmp_path / "tokens"), "--model",
              str(tmp_path / "m"), "--dev-fraction", "0.3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    exports = {}
    for level in ("top", "bottom"):
        run = tmp_path / level
        sets = [
            f"data.train={tmp_path / 'tokens'}", "optim.max_steps=2", "validation.every=2",
            "checkpoint.every=2", "log.progress=false", "model.config.codebook_size=16",
            "model.config.num_layers=1", "model.config.dim=16", "model.config.num_heads=2",
            "data.batch_size=4",
        ]  # fmt: skip
        if level == "bottom":
            sets += ["model.config.num_codebooks=2", "model.config.cond_codebook_size=16",
                     "model.config.block_size=128", "model.config.cond_layers=1"]  # fmt: skip
        recipe = ROOT / "recipes" / f"prior_image_vqvae2_fmnist_{level}.yaml"
        args = ["train", str(recipe), "--run-dir", str(run)]
        for s in sets:
            args += ["--set", s]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        exports[level] = run / "export"
        res = runner.invoke(app, ["export", str(run), str(exports[level])])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["eval-prior", str(exports[level]), str(tmp_path / "tokens")])
        assert res.exit_code == 0, res.output
        uniform = {"top": 64.0, "bottom": 512.0}[level]  # 16 x 4 and 64 x 2 x 4 bits
        assert f"| uniform | {uniform:.1f} |" in res.output
    res = runner.invoke(app, ["info", str(exports["bottom"])])
    assert res.exit_code == 0, res.output
    assert "conditioned on:  1 x 16 codes on a 4 x 4 grid" in res.output
    assert "image code grid: 8 x 8" in res.output and "context:         128 positions" in res.output
    res = runner.invoke(app, ["info", str(exports["top"])])
    assert res.exit_code == 0 and "conditioned on" not in res.output
    assert "classes:         10 (+ null class" in res.output
    config = json.loads((exports["bottom"] / "config.json").read_text())["config"]
    assert config["latent_shape"] == [8, 8] and config["cond_shape"] == [4, 4]
    assert config["block_size"] == 128  # the whole bottom grid, 64 frames x 2 codebooks

    grid = tmp_path / "grid.png"
    gen = ["generate", "-m", str(tmp_path / "m"), "--prior", str(exports["top"]),
           "--bottom-prior", str(exports["bottom"]), "-n", "4", "--class", "3", "--cfg", "2",
           "-o", str(grid)]  # fmt: skip
    res = runner.invoke(app, gen)
    assert res.exit_code == 0, res.output
    from PIL import Image

    # 2 x 2 tiles of the 32 x 32 grid the top codes cover (28 rounded up to the factor 8)
    assert Image.open(grid).size == (2 + 2 * 34, 2 + 2 * 34)
    sample = tmp_path / "grid_codes" / "sample_0.npy"
    res = runner.invoke(app, ["decode", str(sample), "-m", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert Image.open(sample.with_suffix(".png")).size == (32, 32)

    # the bottom prior alone, or the levels swapped: one line each, nothing written
    for args in (
        ["--prior", str(exports["bottom"])],
        ["--prior", str(exports["bottom"]), "--bottom-prior", str(exports["top"])],
        ["--prior", str(exports["top"]), "--bottom-prior", str(exports["top"])],
    ):
        out = tmp_path / "bad.png"
        res = runner.invoke(app, ["generate", "-m", str(tmp_path / "m"), *args, "-o", str(out)])
        assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1, res.output
        assert not out.exists()


def test_generate_images_with_a_bottom_prior_checks_the_tokenizer() -> None:
    from audiotok.tokenizer import ImageTokenizer

    torch.manual_seed(0)
    tok = ImageTokenizer(tiny_vqvae2(channels=1).eval())
    top_prior = _top(tokenizer_id=tok.model_id)
    result = generate_images(tok, top_prior, 2, bottom_prior=_bottom(tokenizer_id=tok.model_id))
    assert result.codes.shape == (2, 9, 4, 4) and result.images.shape == (2, 1, 32, 32)
    assert torch.allclose(result.images, tok.decode(result.codes))
    with pytest.raises(UserError, match="trained on codes of model"):
        generate_images(tok, top_prior, 2, bottom_prior=_bottom(tokenizer_id="0123456789ab"))
    with pytest.raises(UserError, match="--bottom-prior"):
        generate_images(tok, _bottom(tokenizer_id=tok.model_id), 2)
