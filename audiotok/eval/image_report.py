"""``audiotok eval`` for image tokenizers: PSNR, SSIM, code usage and bits over a whole set.

:func:`evaluate_images` reads every input with :func:`audiotok.data.images.open_image_source`
(image folders, recursive, any case of png/jpg/jpeg/webp/bmp; single image files; MNIST IDX
``*-ubyte[.gz]``; CIFAR batches; ``.npy``/``.npz`` arrays; text lists and JSONL manifests),
converts each image to the model's channels (ITU-R 601 luma for grey, repetition for colour,
as in training), encodes and decodes it, and reports:

- **PSNR** (dB) per image on the ``[-1, 1]`` scale with peak-to-peak 2 (the same number as on
  ``[0, 1]`` pixels), reconstructions clamped to ``[-1, 1]``; the mean over images (the
  training validation's definition);
- **SSIM** per image (:func:`audiotok.image.ssim.ssim`, gaussian 11x11, data range 2), mean;
- **code usage over the whole set**: one histogram per codebook accumulated over every image
  (not per batch), the share of entries used at least once, and each codebook's unigram
  entropy;
- **bits per image**: raw ``H' * W' * K * log2(V)``, and the unigram entropy bound
  ``H' * W' * sum_k H_k`` (what a per-codebook entropy coder without context would need);
- a PNG grid: the first images (up to ``grid``) of the first size seen, originals above their
  reconstructions.

Files that cannot be read (truncated, not an image) are skipped with one line each in
``failed``, the others are evaluated. ``report.md`` and ``report.json`` are written into the
report folder with ``grid.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotok.atomic import write_text_atomic
from audiotok.errors import UserError

__all__ = ["ImageEvalReport", "evaluate_images", "render_image_markdown"]


@dataclass
class ImageEvalReport:
    """What :func:`evaluate_images` measured and wrote.

    Attributes:
        summary: the numbers (also ``report.json["summary"]``).
        model: model id, family, channels, downsampling factor, K, V.
        failed: ``{"path", "error"}`` per input or file that was skipped.
        out_dir: the report folder.
        markdown_path, json_path, grid_path: the files written.
    """

    summary: dict[str, Any]
    model: dict[str, Any]
    failed: list[dict[str, str]] = field(default_factory=list)
    out_dir: Path = Path(".")
    markdown_path: Path = Path("report.md")
    json_path: Path = Path("report.json")
    grid_path: Path | None = None


def _open_sources(
    inputs: Sequence[str | os.PathLike], failed: list[dict[str, str]]
) -> list[tuple[str, Any]]:
    """``(input, ImageSource)`` per readable input; skipped files and unreadable inputs go
    to ``failed`` as one line each."""
    from audiotok.data.images import open_image_source

    sources = []
    for item in inputs:
        source = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                source = open_image_source(item)
            except UserError as e:
                error = str(e)
        for w in caught:
            text = str(w.message)
            if text.endswith(")") and ": skipped (" in text:  # "<file>: skipped (<why>)"
                path, _, why = text.partition(": skipped (")
                failed.append({"path": path, "error": why[:-1]})
        if source is None:
            failed.append({"path": str(item), "error": error})
        else:
            sources.append((str(item), source))
    return sources


class _Totals:
    """Running sums over every image: metric sums, code histograms, bits."""

    def __init__(self, num_codebooks: int, codebook_size: int) -> None:
        self.count = 0
        self.psnr = 0.0
        self.ssim = 0.0
        self.raw_bits = 0.0
        self.positions = 0  # code positions H' * W' over all images
        self.hist = torch.zeros(num_codebooks, codebook_size, dtype=torch.long)
        self.codebook_size = codebook_size

    def add(self, images: torch.Tensor, recon: torch.Tensor, codes: torch.Tensor) -> None:
        from audiotok.image.ssim import ssim

        recon = recon.clamp(-1, 1)
        mse = (recon - images).square().flatten(1).mean(1)
        self.psnr += float((10 * torch.log10(4.0 / mse.clamp_min(1e-10))).sum())
        self.ssim += float(ssim(images, recon, data_range=2.0, reduction="none").sum())
        b, k, h, w = codes.shape
        self.count += b
        self.positions += b * h * w
        self.raw_bits += b * h * w * k * math.log2(self.codebook_size)
        flat = codes.permute(1, 0, 2, 3).reshape(k, -1)  # (K, B * H' * W')
        for i in range(k):
            self.hist[i] += torch.bincount(flat[i], minlength=self.codebook_size)

    def summary(self) -> dict[str, Any]:
        n = max(self.count, 1)
        p = self.hist.double() / self.hist.sum(-1, keepdim=True).clamp_min(1)
        entropy = -(torch.where(p > 0, p * p.log2(), torch.zeros_like(p))).sum(-1)  # (K,)
        used = (self.hist > 0).sum(-1)
        return {
            "images": self.count,
            "psnr_db": self.psnr / n,
            "ssim": self.ssim / n,
            "code_usage": float(used.sum()) / float(self.hist.numel()),
            "codes_used_per_codebook": [int(u) for u in used],
            "entropy_bits_per_codebook": [float(e) for e in entropy],
            "bits_per_image_raw": self.raw_bits / n,
            "bits_per_image_entropy": float(entropy.sum()) * self.positions / n,
        }


def _grid(originals: list[np.ndarray], recons: list[np.ndarray]) -> np.ndarray:
    """Originals above reconstructions, ``(2H, N*W, C)`` uint8."""
    return np.concatenate([np.concatenate(originals, 1), np.concatenate(recons, 1)], 0)


def evaluate_images(
    tokenizer: Any,
    inputs: Sequence[str | os.PathLike],
    *,
    out_dir: str | os.PathLike = "eval_report",
    batch_size: int = 256,
    grid: int = 16,
    limit: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImageEvalReport:
    """Evaluate an image tokenizer on every image of ``inputs``; write the report.

    Args:
        tokenizer: an :class:`~audiotok.tokenizer.ImageTokenizer`.
        inputs: folders, image files or dataset files (see the module doc).
        out_dir: the report folder (must be empty unless ``overwrite``).
        batch_size: images per forward pass (images of one size are batched together).
        grid: images in the PNG grid (0: none).
        limit: evaluate at most this many images (default all).
        overwrite: write into a non-empty report folder.
        progress: called with each input's name as it starts.

    Returns:
        The :class:`ImageEvalReport`.

    Raises:
        UserError: no readable image at all, or a bad report folder.
    """
    from audiotok.eval.report import _prepare_out_dir
    from audiotok.image_io import to_channels, write_image
    from audiotok.tokenizer.image import images_to_pixels, pixels_to_images

    out = _prepare_out_dir(out_dir, overwrite)
    failed: list[dict[str, str]] = []
    totals = _Totals(tokenizer.num_codebooks, tokenizer.codebook_size)
    shown: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    start = time.perf_counter()
    sizes: dict[str, int] = {}

    def flush(batch: list[np.ndarray]) -> None:
        images = pixels_to_images(np.stack(batch))  # (B, C, H, W)
        codes = tokenizer.encode(images)
        recon = tokenizer.decode(codes, size=tuple(images.shape[-2:]))
        totals.add(images, recon, codes)
        if len(shown[0]) < grid and batch[0].shape == (shown[0] or batch)[0].shape:
            take = grid - len(shown[0])
            shown[0].extend(batch[:take])
            shown[1].extend(list(images_to_pixels(recon[:take])))

    for name, source in _open_sources(inputs, failed):
        if progress is not None:
            progress(name)
        buckets: dict[tuple[int, ...], list[np.ndarray]] = {}
        for i in range(len(source)):
            if limit is not None and totals.count + sum(map(len, buckets.values())) >= limit:
                break
            try:
                a = to_channels(source.load(i), tokenizer.channels)
            except UserError as e:
                failed.append({"path": source.keys[i], "error": str(e)})
                continue
            key = f"{a.shape[0]}x{a.shape[1]}"
            sizes[key] = sizes.get(key, 0) + 1
            bucket = buckets.setdefault(a.shape, [])
            bucket.append(a)
            if len(bucket) >= batch_size:
                flush(buckets.pop(a.shape))
        for bucket in buckets.values():
            flush(bucket)
    if totals.count == 0:
        why = "; ".join(f"{f['path']}: {f['error']}" for f in failed[:3])
        raise UserError("no readable images to evaluate" + (f" ({why})" if why else ""))
    seconds = time.perf_counter() - start
    summary = totals.summary()
    summary["sizes"] = sizes
    summary["seconds"] = seconds
    summary["images_per_second"] = totals.count / max(seconds, 1e-9)
    model = {
        "model_id": tokenizer.model_id,
        "family": tokenizer.family,
        "channels": tokenizer.channels,
        "downsample_factor": tokenizer.downsample_factor,
        "num_codebooks": tokenizer.num_codebooks,
        "codebook_size": tokenizer.codebook_size,
    }
    report = ImageEvalReport(summary, model, failed, out, out / "report.md", out / "report.json")
    if shown[0]:
        report.grid_path = write_image(_grid(*shown), out / "grid.png", force=True)
    data = {"inputs": [str(i) for i in inputs], "model": model, "summary": summary}
    data["failed"] = failed
    write_text_atomic(report.json_path, json.dumps(data, indent=2) + "\n")
    write_text_atomic(report.markdown_path, render_image_markdown(report, inputs))
    return report


def render_image_markdown(report: ImageEvalReport, inputs: Sequence[Any] = ()) -> str:
    """The Markdown report: model, summary table, per-codebook usage, grid, failures."""
    s, m = report.summary, report.model
    v = m["codebook_size"]
    lines = [
        "# audiotok eval (images)",
        "",
        f"Model `{m['model_id']}` ({m['family']}): {m['channels']} channel(s), "
        f"downsampling {m['downsample_factor']}, K = {m['num_codebooks']} codebook(s) of "
        f"V = {v}.",
        f"Inputs: {', '.join(f'`{i}`' for i in inputs) or '-'}; {s['images']} image(s) "
        f"({', '.join(f'{k}: {n}' for k, n in s['sizes'].items())}).",
        "",
        "| metric | value |",
        "|---|---|",
        f"| PSNR (dB, mean over images) | {s['psnr_db']:.2f} |",
        f"| SSIM (mean over images) | {s['ssim']:.4f} |",
        f"| code usage (whole set) | {100 * s['code_usage']:.1f} % |",
        f"| bits per image (raw, H'W'K log2 V) | {s['bits_per_image_raw']:.1f} |",
        f"| bits per image (unigram entropy bound) | {s['bits_per_image_entropy']:.1f} |",
        f"| images per second (encode + decode, CPU/GPU as run) | {s['images_per_second']:.1f} |",
        "",
        "| codebook | codes used | entropy (bits, max log2 V) |",
        "|---|---|---|",
    ]
    for k, (used, ent) in enumerate(
        zip(s["codes_used_per_codebook"], s["entropy_bits_per_codebook"], strict=True)
    ):
        lines.append(f"| {k} | {used} / {v} | {ent:.3f} / {math.log2(v):.3f} |")
    if report.grid_path is not None:
        lines += ["", "Originals (top) and reconstructions (bottom):", "", "![grid](grid.png)"]
    if report.failed:
        lines += ["", f"Skipped {len(report.failed)} input(s):", ""]
        lines += [f"- `{f['path']}`: {f['error']}" for f in report.failed]
    return "\n".join(lines) + "\n"
