"""A masked (non-causal) prior over any code grid ``(B, K, ...)``: MaskGIT and SoundStorm.

The same pre-norm RoPE blocks as the causal prior (layers.py) without the causal mask. Codes
``(B, K, *spatial)`` (audio ``(B, K, T)``, images ``(B, K, H, W)``) are flattened to N
positions in raster order (RoPE then sees 1-D distances: vertical neighbours of an image are
W apart; a 2-D RoPE would be a refinement); each position's input is the sum of its K code embeddings, where
a masked code has its own "MASK" row per codebook, and K heads predict every code, as in
SoundStorm (Borsos et al., arXiv:2305.09636). Position 0 holds a class token (a null row for
unconditional use and classifier-free guidance, like the GPT's start token).

Training (:meth:`MaskedPrior.loss`, MaskGIT, Chang et al., arXiv:2202.04200): per item draw
``u ~ U(0, 1)``, mask ``ceil(cos(pi u / 2) K N)`` random slots, cross-entropy on them only;
``per_codebook=True`` masks as SoundStorm does (one codebook partly, all finer ones fully).

Decoding (:meth:`MaskedPrior.fill`): the slots holding ``-1`` are filled in ``steps``
iterations; at iteration i every unknown slot is sampled, and the ``floor(U cos(pi i / 2n))``
least confident of them (confidence: log-probability of the drawn code plus annealed Gumbel
noise) are masked again, so iteration n fills the rest. Given codes are never changed.
``per_codebook=True`` runs the schedule codebook by codebook (coarse first), SoundStorm's
order, with ``steps`` given per codebook (e.g. ``[16, 1, 1, 1]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.config import StrictConfig
from audiotok.prior.io import save_pretrained
from audiotok.prior.layers import Transformer
from audiotok.prior.sampling import apply_cfg, sample, uniform

MASK_CODE = -1
"""The value of unknown (masked) codes in :meth:`MaskedPrior.fill`'s input."""


@dataclass(frozen=True)
class MaskedConfig(StrictConfig):
    """Shape of a :class:`MaskedPrior` (arguments as :class:`~audiotok.prior.gpt.GPTConfig`).

    ``max_positions`` bounds N + 1 (the class token plus the flattened code positions).
    ``tokenizer_id`` and ``latent_shape`` record whose codes, of which grid, it models.
    """

    num_codebooks: int
    codebook_size: int
    max_positions: int = 1025
    num_layers: int = 6
    num_heads: int = 8
    dim: int = 512
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    bias: bool = False
    num_classes: int = 0
    class_dropout: float = 0.1
    rope_base: float = 10000.0
    tokenizer_id: str = ""
    latent_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError("dim must be num_heads times an even head size")


class MaskedPrior(nn.Module):
    """Bidirectional prior that predicts masked codes of a grid; see the module docstring."""

    family = "prior_masked"  # the name in an exported config.json (and the model registry)
    config_class = MaskedConfig
    modality = "prior"  # what the trainer builds a task for (audiotok.training.build)

    def __init__(self, config: MaskedConfig) -> None:
        super().__init__()
        self.config = config
        k, v, dim = config.num_codebooks, config.codebook_size, config.dim
        self.class_emb = nn.Embedding(config.num_classes + 1, dim)  # last row: null class
        self.tok_emb = nn.Embedding(k * (v + 1), dim)  # per codebook: V codes, then MASK
        self.drop = nn.Dropout(config.dropout)
        self.transformer = Transformer.from_config(config, config.max_positions)
        self.head = nn.Linear(dim, k * v, bias=False)
        for emb in (self.class_emb, self.tok_emb):
            nn.init.normal_(emb.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        self.register_buffer("offsets", torch.arange(k)[:, None] * (v + 1), persistent=False)

    @property
    def null_class(self) -> int:
        """The label of the unconditional class token."""
        return self.config.num_classes

    def _labels(self, class_labels: Tensor | None, batch: int) -> Tensor:
        if class_labels is None:
            return torch.full((batch,), self.null_class, device=self.offsets.device)
        if class_labels.shape != (batch,):
            raise ValueError(f"class_labels must be ({batch},), got {tuple(class_labels.shape)}")
        if int(class_labels.min()) < 0 or int(class_labels.max()) > self.null_class:
            raise ValueError(f"class labels must be in 0..{self.null_class} (null class last)")
        return class_labels.long()

    def forward(self, tokens: Tensor, class_labels: Tensor | None = None) -> Tensor:
        """Logits of every code: ``tokens: (B, K, N)`` (-1 = masked) -> ``(B, K, N, V)``."""
        b, k, n = tokens.shape
        if n + 1 > self.config.max_positions:
            raise ValueError(
                f"{n} positions exceed max_positions - 1 = {self.config.max_positions - 1}"
            )
        v = self.config.codebook_size
        ids = (torch.where(tokens < 0, v, tokens) + self.offsets).transpose(1, 2)  # (B, N, K)
        codes = F.embedding_bag(ids.reshape(b * n, k), self.tok_emb.weight, mode="sum")
        start = self.class_emb(self._labels(class_labels, b))[:, None]
        x = torch.cat([start, codes.view(b, n, self.config.dim)], dim=1)  # (B, N + 1, D)
        hidden = self.transformer(self.drop(x), torch.arange(n + 1, device=x.device))
        return self.head(hidden[:, 1:]).view(b, n, k, v).transpose(1, 2)

    def loss(
        self,
        codes: Tensor,
        class_labels: Tensor | None = None,
        *,
        per_codebook: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Masked-prediction training loss of ``codes: (B, K, ...)``.

        Args:
            codes: integer codes in ``0..V-1``.
            class_labels: ``(B,)`` or None; replaced by the null class with probability
                ``class_dropout`` in training (CFG).
            per_codebook: False (MaskGIT): mask ``ceil(cos(pi u / 2) K N)`` random slots of the
                whole grid. True (SoundStorm): draw a codebook l per item, keep codebooks
                < l, mask all codebooks > l and ``ceil(cos(pi u / 2) N)`` random positions of
                codebook l, and count only those; trains for ``fill(per_codebook=True)``.
            generator: source of the masking randomness (seed it for reproducible steps).

        Returns:
            loss: mean cross-entropy (nats) over the counted slots.
            per_codebook: ``(K,)`` detached mean cross-entropy of each codebook's counted
                slots (0 where a codebook had none).
        """
        b, k = codes.shape[:2]
        flat = codes.reshape(b, k, -1).long()  # (B, K, N)
        n = flat.shape[2]
        dev = flat.device

        def rand(*shape: int) -> Tensor:
            return uniform(shape, generator, dev)

        ratio = torch.cos(math.pi / 2 * rand(b))  # (B,) the cosine schedule of MaskGIT
        if per_codebook:
            level = (rand(b) * k).long().clamp(max=k - 1)[:, None, None]  # (B, 1, 1)
            n_mask = (ratio * n).ceil().clamp(1, n)
            in_level = (rand(b, n).argsort(1).argsort(1) < n_mask[:, None])[:, None]  # (B, 1, N)
            rows = torch.arange(k, device=dev)[None, :, None]  # (1, K, 1)
            counted = (rows == level) & in_level
            masked = counted | (rows > level)
        else:
            n_mask = (ratio * k * n).ceil().clamp(1, k * n)
            masked = (rand(b, k * n).argsort(1).argsort(1) < n_mask[:, None]).view_as(flat)
            counted = masked
        labels = class_labels
        if labels is not None and self.training and self.config.class_dropout > 0:
            drop = rand(b) < self.config.class_dropout
            labels = torch.where(drop, torch.full_like(labels, self.null_class), labels)
        logits = self(torch.where(masked, MASK_CODE, flat), labels)
        nll = F.cross_entropy(logits.flatten(0, 2).float(), flat.flatten(), reduction="none")
        nll = nll.view_as(flat) * counted
        per_codebook_nll = nll.sum(dim=(0, 2)) / counted.sum(dim=(0, 2)).clamp(min=1)
        return nll.sum() / counted.sum(), per_codebook_nll.detach()

    def _guided_logits(self, x: Tensor, labels: Tensor | None, cfg_scale: float) -> Tensor:
        if cfg_scale == 1.0:
            return self(x, labels)
        if labels is None or self.config.num_classes == 0:
            raise ValueError("cfg_scale != 1 needs class_labels and a model with num_classes > 0")
        both = self(
            x.repeat(2, 1, 1), torch.cat([labels, torch.full_like(labels, self.null_class)])
        )
        return apply_cfg(both[: x.shape[0]], both[x.shape[0] :], cfg_scale)

    @torch.no_grad()
    def fill(
        self,
        codes: Tensor,
        *,
        steps: int | Sequence[int] = 8,
        class_labels: Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        cfg_scale: float = 1.0,
        choice_temperature: float = 4.5,
        per_codebook: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Fill the ``-1`` slots of ``codes: (B, K, ...)``; the other codes are kept.

        Args:
            codes: integer codes, :data:`MASK_CODE` where unknown.
            steps: iterations (a list: per codebook when ``per_codebook``).
            class_labels, cfg_scale: conditioning and guidance as in the GPT.
            temperature, top_k, top_p: sampling of candidates (0 = greedy).
            choice_temperature: scale of the Gumbel noise on confidences, annealed to 0.
            per_codebook: fill codebook 0 first, then 1, ... (SoundStorm).
            generator: seeded ``torch.Generator`` for reproducibility.

        Returns:
            Codes of the input's shape with no ``-1`` left.
        """
        shape, (b, k) = codes.shape, codes.shape[:2]
        x = codes.reshape(b, k, -1).long().clone()  # (B, K, N)
        if x.numel() and (int(x.max()) >= self.config.codebook_size or int(x.min()) < -1):
            raise ValueError(f"codes must be -1 (unknown) or in 0..{self.config.codebook_size - 1}")
        stages = [torch.arange(k)] if not per_codebook else [torch.tensor([i]) for i in range(k)]
        plan = [steps] * len(stages) if isinstance(steps, int) else list(steps)
        if len(plan) != len(stages) or min(plan) < 1:
            raise ValueError(f"steps must be >= 1, one per stage ({len(stages)}), got {steps}")
        was_training = self.training
        self.eval()
        try:
            for stage, n_iter in zip(stages, plan, strict=True):
                in_stage = torch.zeros(k, dtype=torch.bool, device=x.device)
                in_stage[stage.to(x.device)] = True
                todo = (x < 0) & in_stage[None, :, None]  # (B, K, N)
                total = todo.flatten(1).sum(1)  # (B,)
                for i in range(1, n_iter + 1):
                    active = (x < 0) & in_stage[None, :, None]
                    logits = self._guided_logits(x, class_labels, cfg_scale).float()
                    drawn = sample(
                        logits,
                        temperature=temperature,
                        top_k=top_k,
                        top_p=top_p,
                        generator=generator,
                    )
                    logp = logits.log_softmax(-1).gather(-1, drawn[..., None])[..., 0]
                    u = uniform(tuple(drawn.shape), generator, x.device).clamp(1e-20, 1)
                    noise = -torch.log(-torch.log(u))  # Gumbel
                    conf = logp + choice_temperature * (1 - i / n_iter) * noise
                    conf = torch.where(active, conf, math.inf).flatten(1)
                    left = active.flatten(1).sum(1)
                    keep_masked = (total * math.cos(math.pi / 2 * i / n_iter)).floor().long()
                    keep_masked = torch.minimum(keep_masked, (left - 1).clamp(min=0))
                    remask = conf.argsort(1).argsort(1) < keep_masked[:, None]
                    fill = active & ~remask.view_as(active)
                    x = torch.where(fill, drawn, x)
        finally:
            self.train(was_training)
        return x.view(shape)

    def generate(self, batch: int, spatial_shape: Sequence[int], **kwargs: Any) -> Tensor:
        """Codes ``(batch, K, *spatial_shape)`` from nothing; ``kwargs`` as :meth:`fill`."""
        blank = torch.full(
            (batch, self.config.num_codebooks, *spatial_shape),
            MASK_CODE,
            dtype=torch.long,
            device=self.offsets.device,
        )
        return self.fill(blank, **kwargs)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (see :mod:`audiotok.prior.io`)."""
        return save_pretrained(self, directory)
