"""Tiny priors for the tests: a few thousand parameters, built in milliseconds."""

from __future__ import annotations

import torch

from audiotok.prior import GPT, GPTConfig, Pattern, coarse_first, delay, flatten, parallel

K, V = 3, 11

PATTERNS: dict[str, Pattern] = {
    "parallel": parallel(K),
    "delay": delay(K),
    "flatten": flatten(K),
    "coarse_first": coarse_first(K, 1),
    "coarse_first_delay": coarse_first(K, 1, fine="delay"),
}


def tiny_gpt(pattern: Pattern, *, block_size: int = 96, num_classes: int = 0, seed: int = 0) -> GPT:
    """A 2-layer GPT in eval mode with K = 3 codebooks of V = 11 codes."""
    torch.manual_seed(seed)
    config = GPTConfig(
        num_codebooks=K,
        codebook_size=V,
        pattern=pattern,
        block_size=block_size,
        num_layers=2,
        num_heads=2,
        dim=32,
        num_classes=num_classes,
    )
    return GPT(config).eval()
