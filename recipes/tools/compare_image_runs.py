"""The image recipes' comparison table: several trained runs on one test set.

For each run folder (what ``audiotok train`` wrote: ``config.yaml``, ``metrics.jsonl``,
``checkpoints/``) it loads the latest checkpoint's model, encodes and decodes **every** image
of the test set (centre-sized to the recipe's ``data.image_size``, the model's channels) and
reports, with the same definitions as the training validation:

- PSNR (dB, peak-to-peak 2 on ``[-1, 1]`` = the ``[0, 1]`` PSNR; clamped reconstructions),
  the mean over images; SSIM (gaussian 11x11), the mean over images;
- code usage over the whole test set, per level (``top`` / ``bottom`` for VQ-VAE-2): the share
  of the codebook's entries used at least once;
- bits per image: raw (code positions x log2 V) and the unigram bound (positions x the
  entropy of the test set's code histogram, per level);
- generator parameters (and the discriminator's, from the checkpoint), the steps trained and
  the training wall time from ``metrics.jsonl`` (first to last row, plus the first logged
  steps at the first logged rate).

Prints a markdown table (one row per run) and writes it as JSON with ``--json``.

Usage::

    python recipes/tools/compare_image_runs.py RUN [RUN ...] --data TEST_SOURCE \\
        [--names vqvae vqvae2 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor


def load_run(run: Path) -> tuple[torch.nn.Module, dict[str, Any], int, int]:
    """The run's model (latest checkpoint, eval mode), its recipe, step and D params."""
    from audiotok import hub

    recipe = yaml.safe_load((run / "config.yaml").read_text())
    spec = recipe["model"]
    cls = hub.MODEL_FAMILIES[spec["family"]]
    model = cls(cls.config_class.from_dict(spec.get("config", {})))
    ckpt = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    disc = state.get("discriminator") or {}
    disc_params = sum(t.numel() for t in disc.values() if torch.is_tensor(t))
    return model.eval(), recipe, int(state["step"]), disc_params


def wall_minutes(run: Path) -> float:
    """Training wall time from the ``train`` rows of ``metrics.jsonl`` (minutes)."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("split") == "train"]
    first, last = train[0], rows[-1]
    head = first["step"] / max(first.get("steps_per_s", 0.0), 1e-9)
    return (last["time"] - first["time"] + head) / 60


def levels(model: torch.nn.Module, codes: Tensor) -> dict[str, Tensor]:
    """Codes per level: ``{"codes": (B, K, h, w)}``, or top and bottom for VQ-VAE-2."""
    if hasattr(model, "unpack_codes"):
        top, bottom = model.unpack_codes(codes)
        return {"top": top, "bottom": bottom}
    return {"codes": codes}


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: Tensor, batch: int = 250) -> dict[str, Any]:
    """PSNR, SSIM, usage and bits of ``model`` on ``images (N, C, H, W)`` in [-1, 1]."""
    from audiotok.image.ssim import ssim

    v = model.codebook_size
    psnr, sim = [], []
    hist: dict[str, Tensor] = {}
    positions: dict[str, int] = {}
    for i in range(0, len(images), batch):
        x = images[i : i + batch]
        codes = model.encode(x)
        recon = model.decode(codes, size=tuple(x.shape[-2:])).clamp(-1, 1)
        mse = (recon - x).square().flatten(1).mean(1)
        psnr.append(10 * torch.log10(4.0 / mse.clamp_min(1e-10)))
        sim.append(ssim(x, recon, data_range=2.0, reduction="none"))
        for name, c in levels(model, codes).items():
            hist[name] = hist.get(name, torch.zeros(v)) + torch.bincount(c.flatten(), minlength=v)
            positions[name] = int(c[0].numel())
    out: dict[str, Any] = {
        "psnr": float(torch.cat(psnr).mean()),
        "ssim": float(torch.cat(sim).mean()),
        "bits_raw": sum(positions.values()) * math.log2(v),
        "bits_unigram": 0.0,
        "usage": {},
    }
    for name, h in hist.items():
        p = h[h > 0] / h.sum()
        out["usage"][name] = float((h > 0).float().mean())
        out["bits_unigram"] += positions[name] * float(-(p * p.log2()).sum())
    return out


def load_images(data: str, channels: int, size: int) -> Tensor:
    """Every image of ``data`` as ``(N, C, size, size)`` in [-1, 1]."""
    from audiotok.data.images import ImageDataset

    ds = ImageDataset(data, channels=channels, size=size)
    return torch.stack([ds[i][0] for i in range(len(ds))])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", required=True, help="the test set (any image source)")
    p.add_argument("--names", nargs="*", help="a row name per run (default: folder names)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.names or [r.name for r in args.runs]
    rows, cache = [], {}
    for name, run in zip(names, args.runs, strict=True):
        model, recipe, step, disc_params = load_run(run)
        key = (model.channels, recipe["data"]["image_size"])
        if key not in cache:
            cache[key] = load_images(args.data, *key)
        images = cache[key]
        row = {"name": name, "run": str(run), "family": recipe["model"]["family"], "step": step}
        row.update(evaluate(model, images))
        row.update(
            images=len(images),
            params=sum(t.numel() for t in model.parameters()),
            disc_params=disc_params,
            wall_min=wall_minutes(run),
            batch_size=recipe["data"]["batch_size"],
        )
        rows.append(row)
    print("| model | PSNR dB | SSIM | code usage (test set) | bits/image raw (unigram) "
          "| params G / D | steps x batch | wall |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        usage = ", ".join(f"{k} {u:.0%}" for k, u in r["usage"].items())
        disc = f"{r['disc_params'] / 1e3:.0f} k" if r["disc_params"] else "-"
        print(
            f"| {r['name']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {usage} | "
            f"{r['bits_raw']:.0f} ({r['bits_unigram']:.0f}) | {r['params'] / 1e6:.2f} M / {disc} "
            f"| {r['step']} x {r['batch_size']} | {r['wall_min']:.0f} min |"
        )
    print(f"\ntest set: {args.data} ({rows[0]['images']} images, every one)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
