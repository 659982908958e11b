"""Gumbel-softmax quantization (DALL-E dVAE, arXiv:2102.12092; Jang et al. arXiv:1611.01144).

A linear layer turns each vector into logits over the codebook; in training a code is drawn
with the Gumbel-softmax relaxation (``hard=True``: one-hot forward, soft gradient) and the
output is the matching mix of codebook vectors. A KL term to the uniform prior keeps the
code distribution spread out. ``temperature`` is a plain attribute, so a training loop can
anneal it. In eval mode the code is the argmax of the logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.quantize import functional as QF
from audiotok.quantize.base import Quantizer, QuantizerOutput

__all__ = ["GumbelQuantizer"]


class GumbelQuantizer(Quantizer):
    """Quantizer whose codes are sampled from learned logits with the Gumbel-softmax trick.

    Args:
        dim: D, the input and output dimension.
        codebook_size: number of codes K.
        temperature: Gumbel-softmax temperature (anneal it towards ~1/16 during training).
        hard: straight-through one-hot samples in training (soft mixtures otherwise).
        kl_weight: weight of ``KL(softmax(logits) || uniform)`` in ``loss``.

    Shapes:
        ``forward(z: (B, ..., D)) -> QuantizerOutput(quantized (B, ..., D), codes (B, ...))``.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        temperature: float = 1.0,
        hard: bool = True,
        kl_weight: float = 5e-4,
    ) -> None:
        super().__init__()
        if dim < 1 or codebook_size < 1:
            raise ValueError(f"dim and codebook_size must be >= 1, got {dim}, {codebook_size}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.dim = dim
        self.codebook_size = codebook_size
        self.temperature = temperature
        self.hard = hard
        self.kl_weight = kl_weight
        self.to_logits = nn.Linear(dim, codebook_size)
        self.codebook = nn.Parameter(torch.randn(codebook_size, dim) / math.sqrt(dim))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, "
            f"temperature={self.temperature}, hard={self.hard}, kl_weight={self.kl_weight}"
        )

    def _forward(self, z: Tensor) -> QuantizerOutput:
        logits = self.to_logits(z.reshape(-1, self.dim))  # (N, K)
        if self.training:
            weights = F.gumbel_softmax(logits, tau=self.temperature, hard=self.hard, dim=-1)
            codes = weights.argmax(dim=-1)
            quantized = weights @ self.codebook
        else:
            codes = logits.argmax(dim=-1)
            quantized = F.embedding(codes, self.codebook)
        if logits.shape[0]:
            log_probs = F.log_softmax(logits, dim=-1)
            kl = (log_probs.exp() * (log_probs + math.log(self.codebook_size))).sum(-1).mean()
            loss = self.kl_weight * kl
        else:
            loss = z.new_zeros(())
        codes = codes.reshape(z.shape[:-1])
        metrics = QF.usage_metrics(codes, self.codebook_size)
        return QuantizerOutput(quantized.reshape(z.shape), codes, loss, metrics)

    def _encode(self, z: Tensor) -> Tensor:
        return self.to_logits(z.reshape(-1, self.dim)).argmax(dim=-1).reshape(z.shape[:-1])

    def _decode(self, codes: Tensor) -> Tensor:
        return F.embedding(codes, self.codebook)
