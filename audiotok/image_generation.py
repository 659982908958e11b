"""Images from a prior over 2-D codes: class-conditional samples, decoded, as a PNG grid.

The priors (:mod:`audiotok.prior`) see integer codes only. An image's codes ``(K, H', W')``
are modelled as ``H' W'`` frames in raster order (row by row, left to right), the layout of
image token shards (:func:`audiotok.bulk.tokenize_images`). Two samplers:

- ``"ar"``: a causal :class:`~audiotok.prior.gpt.GPT` draws the ``H' W'`` frames one after the
  other (PixelCNN's role, van den Oord et al., arXiv:1606.05328; as a Transformer, Esser et
  al., arXiv:2012.09841), with a KV cache: ``H' W'`` forward steps.
- ``"maskgit"``: a :class:`~audiotok.prior.masked.MaskedPrior` fills a fully masked grid in
  ``steps`` parallel iterations (Chang et al., arXiv:2202.04200): ``steps`` forward passes.

A two-level (VQ-VAE-2) model is sampled as in Razavi et al. (arXiv:1906.00446): a top prior
draws the top grid, then a bottom prior *conditioned on the whole top grid*
(:mod:`audiotok.prior.condition`) draws the bottom grid; the two are packed into the
tokenizer's codes (:func:`sample_two_level_codes`).

All take a class label and classifier-free guidance (``cfg_scale``, Ho & Salimans,
arXiv:2207.12598). This module joins a prior with an image tokenizer: it is what
``audiotok generate`` runs for an image prior, and what the evaluation scripts call.

Over 400 lines because sampling (one level or two), scoring and writing the grid share the
label, sampler and tokenizer checks kept here once.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiotok.errors import UserError
from audiotok.generation import check_pair

__all__ = [
    "ImageGeneration",
    "SAMPLERS",
    "bundled_prior_dir",
    "check_levels",
    "generate_images",
    "image_grid",
    "sample_image_codes",
    "sample_two_level_codes",
    "sampler_of",
    "score_image_prior",
    "write_generation",
]

SAMPLERS = ("ar", "maskgit")
"""Names of the samplers: autoregressive (a causal prior) and MaskGIT (a masked prior)."""


@dataclass
class ImageGeneration:
    """What :func:`generate_images` made.

    Attributes:
        codes: ``(N, K, H', W')`` long.
        images: ``(N, C, H, W)`` float in the tokenizer's range (``[-1, 1]``, not clamped).
        labels: ``(N,)`` class of each sample (``-1``: unconditional).
        sampler: ``"ar"`` or ``"maskgit"``.
        seconds: wall time of the sampling (the prior only, not the decoding).
    """

    codes: Tensor
    images: Tensor
    labels: Tensor
    sampler: str
    seconds: float


def bundled_prior_dir(model: str) -> Path | None:
    """The prior bundled for the bundled tokenizer ``model``: ``audiotok/pretrained/
    <model>_prior/`` when it is installed, else None (e.g. ``"fmnist"`` ->
    ``pretrained/fmnist_prior``)."""
    if not model or "/" in model or os.sep in model or model.startswith("."):
        return None
    folder = Path(__file__).parent / "pretrained" / f"{model}_prior"
    return folder if (folder / "config.json").is_file() else None


def sampler_of(prior: Any) -> str:
    """``"ar"`` for a causal prior (it has ``context_frames``), ``"maskgit"`` for a masked one."""
    return "ar" if hasattr(prior, "context_frames") else "maskgit"


def _grid_shape(prior: Any, latent_shape: tuple[int, int] | None) -> tuple[int, int]:
    shape = tuple(latent_shape or getattr(prior.config, "latent_shape", ()) or ())
    if len(shape) != 2 or min(shape) < 1:
        raise UserError(
            "the prior records no image code grid (latent_shape); it is not an image prior "
            "(train it on image token shards) or pass the grid"
        )
    return int(shape[0]), int(shape[1])


def _labels(prior: Any, n: int, class_label: int | None, cfg_scale: float) -> Tensor | None:
    classes = int(getattr(prior.config, "num_classes", 0))
    if class_label is None:
        if cfg_scale != 1.0:
            raise UserError("--cfg needs --class (guidance steers towards a class)")
        return None
    if classes == 0:
        raise UserError("the prior is unconditional (trained without class labels); drop --class")
    if not 0 <= int(class_label) < classes:
        raise UserError(f"--class must be in 0..{classes - 1}, got {class_label}")
    return torch.full((n,), int(class_label), dtype=torch.long)


@torch.no_grad()
def sample_image_codes(
    prior: Any,
    num_samples: int,
    *,
    class_label: int | None = None,
    cfg_scale: float = 1.0,
    sampler: str | None = None,
    steps: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    latent_shape: tuple[int, int] | None = None,
    seed: int = 0,
) -> Tensor:
    """Codes of ``num_samples`` images drawn from ``prior`` (no tokenizer involved).

    Args:
        prior: a GPT (``sampler="ar"``) or a MaskedPrior (``"maskgit"``) over image codes.
        num_samples: N.
        class_label: the class of every sample (None: unconditional).
        cfg_scale: classifier-free guidance (1: none; needs ``class_label`` otherwise).
        sampler: ``"ar"`` or ``"maskgit"``; default: the one the prior supports.
        steps: MaskGIT iterations (ignored by ``"ar"``).
        temperature, top_k: sampling of each code (MaskGIT: of each candidate).
        latent_shape: ``(H', W')``; default the prior's ``config.latent_shape``.
        seed: seeds the sampling; the same seed gives the same codes.

    Returns:
        ``(N, K, H', W')`` long codes on the CPU.

    Raises:
        UserError: a sampler the prior cannot run, a bad class, or no code grid.
    """
    if num_samples < 1:
        raise UserError(f"-n must be >= 1, got {num_samples}")
    kind = sampler or sampler_of(prior)
    if kind not in SAMPLERS:
        raise UserError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {kind!r}")
    if kind != sampler_of(prior):
        have = "a causal (AR)" if sampler_of(prior) == "ar" else "a masked (MaskGIT)"
        raise UserError(f"--sampler {kind} needs a {kind} prior; this is {have} prior")
    h, w = _grid_shape(prior, latent_shape)
    labels = _labels(prior, num_samples, class_label, cfg_scale)
    device = next(prior.parameters()).device
    labels = None if labels is None else labels.to(device)
    generator = torch.Generator().manual_seed(int(seed))
    if kind == "ar":
        codes = prior.generate(
            h * w,
            class_labels=labels,
            batch_size=None if labels is not None else num_samples,
            temperature=temperature,
            top_k=top_k,
            cfg_scale=cfg_scale,
            generator=generator,
        )  # (N, K, H' W') in raster order
    else:
        if steps < 1:
            raise UserError(f"--steps must be >= 1, got {steps}")
        codes = prior.generate(
            num_samples,
            (h * w,),
            steps=steps,
            class_labels=labels,
            temperature=temperature,
            top_k=top_k,
            cfg_scale=cfg_scale,
            generator=generator,
        )
    return codes.reshape(num_samples, -1, h, w).cpu()


def check_levels(top_prior: Any, bottom_prior: Any, tokenizer: Any | None = None) -> int:
    """Check that ``bottom_prior`` is conditioned on ``top_prior``'s grid (and that both
    levels fill ``tokenizer``'s packed codes); returns the ratio r of the two grids.

    Raises:
        UserError: naming the mismatch.
    """
    bc = bottom_prior.config
    if not getattr(bc, "cond_codebooks", 0):
        raise UserError(
            "--bottom-prior must be conditioned on the top codes (a prior trained with "
            "model.config.cond_codebooks, e.g. recipes/prior_image_vqvae2_fmnist_bottom.yaml)"
        )
    if getattr(top_prior.config, "cond_codebooks", 0):
        raise UserError("--prior must be the top prior; this one is itself conditioned")
    if sampler_of(top_prior) != "ar" or sampler_of(bottom_prior) != "ar":
        raise UserError("the two-level samplers are autoregressive (AR priors only)")
    tc = top_prior.config
    top = (tc.num_codebooks, tc.codebook_size, tuple(tc.latent_shape))
    want = (bc.cond_codebooks, bc.cond_codebook_size, tuple(bc.cond_shape))
    if top != want:
        raise UserError(
            f"the bottom prior is conditioned on {want[0]} x {want[1]} codes on {want[2]} "
            f"grids; the top prior models {top[0]} x {top[1]} on {top[2]}"
        )
    if tokenizer is not None and int(tokenizer.num_codebooks) != bc.packed_rows:
        raise UserError(
            f"the model packs {tokenizer.num_codebooks} code rows; the two priors make "
            f"{bc.packed_rows}"
        )
    return bc.cond_ratio


@torch.no_grad()
def sample_two_level_codes(
    top_prior: Any,
    bottom_prior: Any,
    num_samples: int,
    *,
    class_label: int | None = None,
    cfg_scale: float = 1.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    tokenizer: Any | None = None,
) -> Tensor:
    """VQ-VAE-2 sampling: the top grid from ``top_prior``, then the bottom grid from
    ``bottom_prior`` conditioned on it; returns the packed codes ``(N, Kt + r*r*Kb, h, w)``
    of :mod:`audiotok.tokenizer.image` (CPU, long). Arguments as :func:`sample_image_codes`;
    ``tokenizer``, when given, must pack that many rows (:func:`check_levels`).
    """
    from audiotok.prior.condition import pack_levels

    ratio = check_levels(top_prior, bottom_prior, tokenizer)
    top = sample_image_codes(
        top_prior,
        num_samples,
        class_label=class_label,
        cfg_scale=cfg_scale,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )  # (N, Kt, h, w)
    labels = _labels(bottom_prior, num_samples, class_label, cfg_scale)
    device = next(bottom_prior.parameters()).device
    h, w = bottom_prior.config.latent_shape
    bottom = bottom_prior.generate(
        h * w,
        class_labels=None if labels is None else labels.to(device),
        cond=top.to(device),
        temperature=temperature,
        top_k=top_k,
        cfg_scale=cfg_scale,
        generator=torch.Generator().manual_seed(int(seed) + 1),
    )  # (N, Kb, H W) raster
    return pack_levels(top, bottom.cpu(), ratio)


def generate_images(
    tokenizer: Any,
    prior: Any,
    num_samples: int = 16,
    *,
    class_label: int | None = None,
    cfg_scale: float = 1.0,
    sampler: str | None = None,
    steps: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    bottom_prior: Any | None = None,
) -> ImageGeneration:
    """Sample codes with ``prior`` (see :func:`sample_image_codes`) and decode them.

    Args:
        tokenizer: an image tokenizer (``modality == "image"``, ``model_id``, ``decode``).
        prior: a prior trained on this tokenizer's image codes (the top prior when
            ``bottom_prior`` is given).
        num_samples, class_label, cfg_scale, sampler, steps, temperature, top_k, seed: see
            :func:`sample_image_codes`.
        bottom_prior: a two-level (VQ-VAE-2) model's bottom prior, conditioned on the top
            codes (:func:`sample_two_level_codes`).

    Returns:
        :class:`ImageGeneration`.

    Raises:
        UserError: an audio tokenizer, or a prior trained on another tokenizer's codes.
    """
    if getattr(tokenizer, "modality", None) != "image":
        raise UserError("the prior models image codes; pass an image tokenizer (--model)")
    check_pair(tokenizer, prior)
    if bottom_prior is None and getattr(prior.config, "cond_codebooks", 0):
        raise UserError(
            "this prior is a bottom prior (conditioned on top codes): pass the top prior as "
            "--prior and this one as --bottom-prior"
        )
    start = time.perf_counter()
    if bottom_prior is not None:
        check_pair(tokenizer, bottom_prior)
        if sampler not in (None, "ar"):
            raise UserError("the two-level samplers are autoregressive: drop --sampler")
        codes = sample_two_level_codes(
            prior,
            bottom_prior,
            num_samples,
            class_label=class_label,
            cfg_scale=cfg_scale,
            temperature=temperature,
            top_k=top_k,
            seed=seed,
            tokenizer=tokenizer,
        )
    else:
        codes = sample_image_codes(
            prior,
            num_samples,
            class_label=class_label,
            cfg_scale=cfg_scale,
            sampler=sampler,
            steps=steps,
            temperature=temperature,
            top_k=top_k,
            seed=seed,
        )
    seconds = time.perf_counter() - start
    labels = torch.full((num_samples,), -1 if class_label is None else int(class_label))
    images = tokenizer.decode(codes)
    return ImageGeneration(codes, images, labels, sampler or sampler_of(prior), seconds)


@torch.no_grad()
def score_image_prior(
    prior: Any,
    codes: Tensor,
    labels: Tensor | None = None,
    *,
    fit: Tensor | None = None,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Bits per image of ``codes: (N, K, T)`` (raster-scanned grids) under a causal prior.

    Args:
        prior: a GPT over image codes.
        codes: the evaluated images' codes, ``T = H' W'``.
        labels: ``(N,)`` true classes (-1: none); with a class-conditional prior the bits are
            reported both given the class and given the null class.
        fit: codes ``(M, K, T)`` the unigram baseline is fit on (a train split; default
            ``codes``, which flatters it).
        batch_size: images per forward pass.

    Returns:
        ``bits_per_image`` (given the class where there are labels, else the null class),
        ``bits_per_image_null_class``, ``unigram_bits_per_image``, ``uniform_bits_per_image``
        (``T K log2 V``) and ``images``.
    """
    from audiotok.prior.score import unigram_bits

    if sampler_of(prior) != "ar":
        raise UserError("bits per image need a causal (AR) prior; a masked prior has no likelihood")
    v = prior.config.codebook_size
    cond = None
    if getattr(prior.config, "cond_codebooks", 0):
        # a bottom prior scores packed two-level rows: the bottom grid given the top one
        codes, cond = prior.split_packed(codes.long())
        fit = None if fit is None else prior.split_packed(fit.long())[0]
    n, k, t = codes.shape
    codes = codes[:, : prior.config.num_codebooks].long()

    def total(with_labels: bool) -> float:
        sums = 0.0
        for i in range(0, n, batch_size):
            lab = None
            if with_labels and labels is not None:
                lab = labels[i : i + batch_size].long()
                lab = lab.where(lab >= 0, prior.config.num_classes)
            extra = {} if cond is None else {"cond": cond[i : i + batch_size]}
            s, _ = prior.nll_sums(codes[i : i + batch_size], lab, **extra)
            sums += float(s.sum())
        return sums / n / math.log(2)

    conditional = labels is not None and prior.config.num_classes > 0
    null = total(False)
    ref = codes if fit is None else fit[:, : prior.config.num_codebooks].long()
    joined = codes.transpose(0, 1).reshape(1, codes.shape[1], -1)  # (1, K, N T)
    uni = unigram_bits(joined, v, fit=ref.transpose(0, 1).reshape(1, ref.shape[1], -1))
    return {
        "bits_per_image": total(True) if conditional else null,
        "bits_per_image_null_class": null,
        "unigram_bits_per_image": uni["bits_per_frame"] * t,
        "uniform_bits_per_image": t * codes.shape[1] * math.log2(v),
        "images": int(n),
    }


def image_grid(images: Tensor, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``images: (N, C, H, W)`` in ``[-1, 1]`` into one ``(rows H', cols W', C)`` uint8
    picture, ``ncols`` per row (default: a near-square grid), ``pad`` black pixels apart."""
    n, c, h, w = images.shape
    cols = int(ncols or math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        out[top : top + h, left : left + w] = pixels[i].transpose(1, 2, 0)
    return out


def write_generation(
    result: ImageGeneration,
    tokenizer: Any,
    out: str | os.PathLike,
    *,
    force: bool = False,
    ncols: int | None = None,
) -> list[Path]:
    """Write the grid ``out`` (PNG) and each sample's token file next to it.

    Token files go to ``<out stem>_codes/sample_<i>.npy`` (``(K, H', W')`` with the image
    trailer of :mod:`audiotok.codes`, so ``audiotok decode`` turns one into a PNG). Every
    write is atomic; nothing is replaced without ``force``, and the check runs before the
    first write so a refusal leaves nothing half-written.

    Returns:
        The grid's path, then the token files'.

    Raises:
        UserError: an existing output without ``force``, or a write error.
    """
    from audiotok.codes import write_codes
    from audiotok.image_io import write_image

    grid = Path(out)
    folder = grid.with_name(grid.stem + "_codes")
    tokens = [folder / f"sample_{i}.npy" for i in range(result.codes.shape[0])]
    if not force:
        for p in (grid, *tokens):
            if p.exists():
                raise UserError(f"{p}: output already exists (use --force to overwrite)")
    written = [write_image(image_grid(result.images, ncols), grid, force=force)]
    folder.mkdir(parents=True, exist_ok=True)
    k, h, w = result.codes.shape[1:]
    height, width = result.images.shape[-2:]
    meta = tokenizer.codes_meta(k, int(height), int(width))
    for path, codes in zip(tokens, result.codes, strict=True):
        written.append(write_codes(path, codes.numpy(), meta, force=force))
    return written
