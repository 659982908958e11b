"""An image VQ-VAE trains through the common trainer: it learns, the PatchGAN joins after
its warm-up, and a resumed run continues exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotok.training import checkpoint as ckpt
from audiotok.training.config import config_from_dict
from audiotok.training.trainer import train


def _images(root: Path) -> Path:
    # 64 smooth 16x16 grey images: blobs at random places (learnable, unlike noise)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    imgs = []
    for _ in range(64):
        cy, cx, r = rng.uniform(3, 13), rng.uniform(3, 13), rng.uniform(2, 5)
        imgs.append(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "blobs.npy", np.stack(imgs).astype(np.uint8))
    return root / "blobs.npy"


def _recipe(data: Path, run_dir: Path, steps: int, gan: bool) -> dict[str, Any]:
    return {
        "model": {
            "family": "image_vqvae",
            "config": {
                "channels": 1,
                "hidden": 16,
                "num_res_blocks": 1,
                "res_hidden": 8,
                "latent_dim": 8,
                "quantizer": {"type": "ema", "codebook_size": 32, "dead_code_fraction": 0.05},
            },
        },
        "data": {"train": str(data), "batch_size": 8},
        "optim": {"lr": 2e-3, "warmup_steps": 2, "max_steps": steps},
        "discriminator": {"enabled": gan},
        "loss": {
            "image": {
                "gan_weight": 0.1 if gan else 0.0,
                "disc_start": 2,
                "disc_hidden": 8,
                "disc_layers": 2,
            }
        },
        "checkpoint": {"every": 2, "keep_last": 10},
        "log": {"every": 1, "tensorboard": False, "progress": False},
        "validation": {"every": steps, "num_batches": 1, "num_audio_samples": 4},
        "run_dir": str(run_dir),
        "seed": 2,
    }


def test_image_vqvae_learns(tmp_path: Path) -> None:
    data = _images(tmp_path / "img")
    train(config_from_dict(_recipe(data, tmp_path / "run", 60, gan=False)))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["rec"] for r in rows if r["split"] == "train"]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    val = [r for r in rows if r["split"] == "val"][-1]
    assert val["psnr"] > 15.0, val
    assert (tmp_path / "run" / "samples" / "step_60" / "grid.png").exists()


def test_image_resume_is_exact_with_the_gan(tmp_path: Path) -> None:
    data = _images(tmp_path / "img")
    straight = train(config_from_dict(_recipe(data, tmp_path / "a", 4, gan=True)))
    cfg = config_from_dict(_recipe(data, tmp_path / "b", 4, gan=True))
    assert train(cfg, stop_at=2).step == 2
    resumed = train(cfg, resume=True)
    a, b = ckpt.load_checkpoint(straight.checkpoint), ckpt.load_checkpoint(resumed.checkpoint)
    for part in ("model", "discriminator"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert "disc" not in train_rows[0] and "disc" in train_rows[-1]  # joins at disc_start
