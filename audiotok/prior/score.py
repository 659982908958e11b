"""Baselines for the bits a prior spends on codes ``(B, K, T)``: unigram and count bigram.

A prior is only worth its compute if it beats counting. These helpers give the bits per
frame of two count models of each codebook, the yardsticks of ``audiotok eval-prior`` next to
:meth:`audiotok.prior.gpt.GPT.score`:

* unigram: ``p(c)`` per codebook (its empirical entropy when fitted on the scored codes);
* bigram: ``p(c_t | c_{t-1})`` per codebook along time, add-``alpha`` smoothed.

Fit them on training codes (``fit=...``) and score dev codes for a fair comparison; by default
they are fitted on the scored codes themselves, which is optimistic (a lower bound for counts).
EnCodec (arXiv:2210.13438, section 3.3) reports its small LM against the same raw rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def _check(codes: Tensor, codebook_size: int) -> None:
    if codes.dim() != 3 or codes.dtype.is_floating_point:
        raise ValueError(f"codes must be integer (B, K, T), got {tuple(codes.shape)} {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError(f"codes must be in 0..{codebook_size - 1}")


def _report(bits: Tensor, frame_rate: float) -> dict[str, Any]:
    per_frame = float(bits.sum())
    return {
        "bits_per_codebook": [float(b) for b in bits],
        "bits_per_frame": per_frame,
        "kbps": per_frame * frame_rate / 1000,
    }


def unigram_bits(
    codes: Tensor,
    codebook_size: int,
    *,
    fit: Tensor | None = None,
    alpha: float = 0.5,
    frame_rate: float = 75.0,
) -> dict[str, Any]:
    """Bits of ``codes: (B, K, T)`` under per-codebook code frequencies.

    Args:
        codes: the codes to score.
        codebook_size: V.
        fit: codes ``(B', K, T')`` to count (default: ``codes``).
        alpha: add-alpha smoothing of the counts (codes unseen in ``fit`` keep finite bits).
        frame_rate: frames per second, for kbps.

    Returns:
        ``bits_per_codebook`` (K floats), ``bits_per_frame`` and ``kbps``.
    """
    fit = codes if fit is None else fit
    _check(codes, codebook_size)
    _check(fit, codebook_size)
    k = codes.shape[1]
    counts = (
        torch.stack(
            [torch.bincount(fit[:, i].flatten(), minlength=codebook_size) for i in range(k)]
        ).double()
        + alpha
    )  # (K, V)
    logp = counts.log() - counts.sum(dim=1, keepdim=True).log()
    nll = -logp.gather(1, codes.transpose(0, 1).flatten(1).long())  # (K, B T)
    return _report(nll.mean(dim=1) / math.log(2), frame_rate)


def bigram_bits(
    codes: Tensor,
    codebook_size: int,
    *,
    fit: Tensor | None = None,
    alpha: float = 0.5,
    frame_rate: float = 75.0,
) -> dict[str, Any]:
    """Bits of ``codes: (B, K, T)`` under per-codebook count bigrams over time.

    Frame 0 of each item is scored by the unigram (there is no previous code). Arguments and
    return as :func:`unigram_bits`. Memory is ``K V^2`` counts (8 x 1024^2 doubles = 64 MiB).
    """
    fit = codes if fit is None else fit
    _check(codes, codebook_size)
    _check(fit, codebook_size)
    v, (_, k, t) = codebook_size, codes.shape
    if t == 0:
        return _report(torch.zeros(k, dtype=torch.float64), frame_rate)
    uni = unigram_bits(codes[..., :1], v, fit=fit, alpha=alpha, frame_rate=frame_rate)
    bits = torch.tensor(uni["bits_per_codebook"], dtype=torch.float64)  # frame 0, mean over B
    if t > 1:
        pairs = fit[..., :-1].long() * v + fit[..., 1:].long()  # (B', K, T'-1)
        counts = (
            torch.stack([torch.bincount(pairs[:, i].flatten(), minlength=v * v) for i in range(k)])
            .double()
            .view(k, v, v)
            + alpha
        )
        logp = counts.log() - counts.sum(dim=2, keepdim=True).log()  # (K, V, V)
        prev, cur = codes[..., :-1].long(), codes[..., 1:].long()
        idx = (prev * v + cur).transpose(0, 1).flatten(1)  # (K, B (T-1))
        nll = -logp.view(k, v * v).gather(1, idx).mean(dim=1) / math.log(2)
        bits = (bits + (t - 1) * nll) / t
    return _report(bits, frame_rate)
