"""Audio from a token prior: continuation of a prompt or free generation, and prior scores.

The prior (:mod:`audiotok.prior`) sees integer codes only; this module joins it with a
tokenizer: the prompt's audio is encoded, the prior continues the codes, the tokenizer
decodes them. It is what ``audiotok generate`` and ``audiotok eval-prior`` call.

- :func:`generate_audio`: ``num_samples`` continuations of the first ``prompt_seconds`` of a
  recording (or unconditional samples), ``seconds`` long in all, seeded.
- :func:`score_prior`: bits per codebook and per frame of codes under the prior, against a
  unigram and a count-bigram model fit on other codes, and the bitrates that follow
  (what an entropy coder driven by each model would need) next to the raw rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiotok.errors import UserError
from audiotok.prior.score import bigram_bits, unigram_bits

__all__ = ["Generation", "check_pair", "generate_audio", "score_prior"]


@dataclass
class Generation:
    """What :func:`generate_audio` made.

    Attributes:
        codes: ``(N, K, T)`` long, prompt codes included.
        audio: ``(N, C, samples)`` float at ``sample_rate``.
        sample_rate: Hz.
        prompt_frames: frames of each item that came from the prompt.
    """

    codes: Tensor
    audio: Tensor
    sample_rate: int
    prompt_frames: int


def check_pair(tokenizer: Any, prior: Any) -> None:
    """Raise :class:`UserError` unless ``prior`` models codes that ``tokenizer`` makes."""
    cfg = prior.config
    wanted = getattr(cfg, "tokenizer_id", "")
    if wanted and wanted != tokenizer.model_id:
        raise UserError(
            f"the prior was trained on codes of model {wanted}, not {tokenizer.model_id} "
            "(pass the matching --model, or a prior trained on this tokenizer's codes)"
        )
    if cfg.codebook_size != tokenizer.codebook_size or cfg.num_codebooks > tokenizer.num_codebooks:
        raise UserError(
            f"the prior models {cfg.num_codebooks} x {cfg.codebook_size} codes, the tokenizer "
            f"makes {tokenizer.num_codebooks} x {tokenizer.codebook_size}"
        )


@torch.no_grad()
def generate_audio(
    tokenizer: Any,
    prior: Any,
    *,
    prompt: np.ndarray | Tensor | None = None,
    prompt_sample_rate: int | None = None,
    prompt_seconds: float = 3.0,
    seconds: float = 10.0,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    cfg_scale: float = 1.0,
    class_label: int | None = None,
    seed: int = 0,
) -> Generation:
    """Continue a prompt (or start from nothing) with the prior and decode the result.

    Args:
        tokenizer: an :class:`~audiotok.tokenizer.AudioTokenizer`.
        prior: a :class:`~audiotok.prior.gpt.GPT` over this tokenizer's codes.
        prompt: audio ``(T,)`` or ``(C, T)``; only its first ``prompt_seconds`` are used.
        prompt_sample_rate: the prompt's rate (default: the tokenizer's).
        prompt_seconds: how much of the prompt conditions the continuation.
        seconds: the length of each result, prompt included.
        num_samples: N continuations (of the same prompt).
        temperature, top_k, top_p, cfg_scale: see :func:`audiotok.prior.generate.generate`.
        class_label: a class for a class-conditional prior (None: unconditional).
        seed: seeds the sampling; the same seed gives the same result.

    Returns:
        :class:`Generation`.

    Raises:
        UserError: a mismatched pair, or lengths that leave nothing to generate.
    """
    check_pair(tokenizer, prior)
    k = prior.config.num_codebooks
    total = max(1, round(seconds * tokenizer.frame_rate))
    prompt_codes = None
    if prompt is not None:
        sr = int(prompt_sample_rate or tokenizer.sample_rate)
        wav = torch.as_tensor(np.asarray(prompt, dtype=np.float32))
        wav = wav[..., : max(1, round(prompt_seconds * sr))]
        prompt_codes = tokenizer.encode(wav, sample_rate=sr, num_codebooks=k)[:, :, :total]
        prompt_codes = prompt_codes.expand(num_samples, -1, -1).contiguous()
    p = 0 if prompt_codes is None else prompt_codes.shape[-1]
    if p >= total:
        raise UserError(
            f"nothing to generate: the prompt ({p} frames) fills the {seconds} s asked for"
        )
    device = next(prior.parameters()).device
    generator = torch.Generator().manual_seed(int(seed))
    labels = None
    if class_label is not None:
        labels = torch.full((num_samples,), int(class_label), dtype=torch.long, device=device)
    new = prior.generate(
        total - p,
        prompt=None if prompt_codes is None else prompt_codes.to(device),
        class_labels=labels,
        batch_size=None if prompt_codes is not None or labels is not None else num_samples,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        cfg_scale=cfg_scale,
        generator=generator,
    ).cpu()
    codes = new if prompt_codes is None else torch.cat([prompt_codes, new], dim=-1)
    audio = tokenizer.decode(codes)
    return Generation(codes, audio, int(tokenizer.sample_rate), p)


def score_prior(
    prior: Any,
    codes: list[Tensor],
    *,
    fit: list[Tensor] | None = None,
    frame_rate: float = 75.0,
) -> dict[str, Any]:
    """Bits of ``codes`` under the prior and under unigram / count-bigram baselines.

    Args:
        prior: a :class:`~audiotok.prior.gpt.GPT`.
        codes: the evaluated files, each ``(K', T)`` with ``K' >= K`` (the first K are used).
        fit: codes the baselines are fit on (a train split); default: ``codes`` themselves,
            which flatters the baselines.
        frame_rate: code frames per second.

    Returns:
        ``{"prior", "unigram", "bigram"}`` each with ``bits_per_codebook``,
        ``bits_per_frame`` and ``kbps`` (frame-weighted over files), plus ``raw_kbps``,
        ``frames``, ``files`` and ``reduction`` (1 - prior kbps / raw kbps).
    """
    if not codes:
        raise UserError("no codes to score")
    k, v = prior.config.num_codebooks, prior.config.codebook_size
    files = [c[:k].long() for c in codes]
    fit_files = [c[:k].long() for c in (fit or codes)]
    fit_cat = torch.cat(fit_files, dim=-1)[None]  # (1, K, sum T)
    frames = [f.shape[-1] for f in files]
    total = float(sum(frames))

    def weighted(reports: list[dict[str, Any]]) -> dict[str, Any]:
        per_cb = np.zeros(k)
        for rep, n in zip(reports, frames, strict=True):
            per_cb += np.asarray(rep["bits_per_codebook"]) * n / total
        per_frame = float(per_cb.sum())
        return {
            "bits_per_codebook": per_cb.tolist(),
            "bits_per_frame": per_frame,
            "kbps": per_frame * frame_rate / 1000.0,
        }

    # the baselines score the files end to end in one pass (a bigram's counts are K V^2):
    # exact for the unigram, and off by one transition per file boundary for the bigram
    joined = torch.cat(files, dim=-1)[None]
    out = {
        "prior": weighted([prior.score(f[None], frame_rate=frame_rate) for f in files]),
        "unigram": unigram_bits(joined, v, fit=fit_cat, frame_rate=frame_rate),
        "bigram": bigram_bits(joined, v, fit=fit_cat, frame_rate=frame_rate),
    }
    raw = k * math.log2(v) * frame_rate / 1000.0
    out.update(
        raw_kbps=raw,
        frames=int(total),
        files=len(files),
        reduction=1.0 - out["prior"]["kbps"] / raw,
    )
    return out
