"""Turning next-code logits into codes: temperature, top-k, top-p and classifier-free guidance.

Every function works on the last axis of ``logits: (..., V)`` and never touches the others, so
the K heads of a step are filtered independently. Top-k follows Fan et al. (2018), nucleus
(top-p) sampling Holtzman et al. (arXiv:1904.09751), classifier-free guidance Ho & Salimans
(arXiv:2207.12598) as used on logits by MusicGen (arXiv:2306.05284). Randomness comes only
from the ``torch.Generator`` passed in, so a seeded generator reproduces a sample exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of the last axis, set the rest to ``-inf``.

    Ties at the k-th value are all kept. ``k >= V`` keeps everything.
    """
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most likely codes whose probability reaches ``p`` (nucleus).

    The most likely code is always kept, so ``p`` near 0 is greedy; ``p = 1`` keeps all.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p == 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely codes
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def apply_cfg(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """Classifier-free guidance: ``uncond + scale (cond - uncond)``.

    ``scale = 1`` gives the conditional logits, ``scale = 0`` the unconditional ones, larger
    values push away from the unconditional prediction.
    """
    return uncond + scale * (cond - uncond)


def sample(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one code per row of ``logits: (..., V)`` -> ``(...)`` long.

    Args:
        logits: unnormalised scores; ``-inf`` entries (masked codes) are never drawn.
        temperature: divides the logits; ``0`` means greedy (argmax, no randomness).
        top_k: keep only the k most likely codes (None: all).
        top_p: keep the nucleus of mass p (None: all); applied after top-k.
        generator: the source of randomness (seed it for reproducible samples).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.softmax(dim=-1).reshape(-1, logits.shape[-1])
    if generator is not None and generator.device != probs.device:
        # draw where the generator lives, so a CPU seed also drives a GPU model
        drawn = torch.multinomial(probs.to(generator.device), 1, generator=generator)
    else:
        drawn = torch.multinomial(probs, 1, generator=generator)
    return drawn.view(logits.shape[:-1]).to(logits.device)


def uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """``U(0, 1)`` samples of ``shape`` drawn with ``generator`` (on its device), on ``device``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)
