"""Transformer blocks shared by the causal prior (gpt.py) and the masked prior (masked.py).

Pre-norm blocks (LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual) as in
nanoGPT's ``model.py`` (https://github.com/karpathy/nanoGPT), attention on
``F.scaled_dot_product_attention`` with rotary position embeddings (RoPE, Su et al.,
arXiv:2104.09864) applied to queries and keys. RoPE only sees relative distances, which is what
makes left-padded batches and re-based sliding windows exact (see generate.py).

The static KV cache is allocated once for the length a request needs (prompt + new steps,
capped at the trained context), not for the full context, and written in place: no
concatenation per step (the cost that bark PR#27 and heartlib PR#122 report).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """cos/sin tables of RoPE for positions ``0 .. max_positions - 1`` (GPT-NeoX half layout).

    Args:
        head_dim: per-head channels (even).
        max_positions: largest position + 1 that will ever be asked for.
        base: the frequency base (10000 in the paper).
    """

    def __init__(self, head_dim: int, max_positions: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.arange(max_positions, dtype=torch.float64)[:, None] * inv_freq  # (L, hd/2)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Tables for ``positions: (B, L)`` or ``(L,)`` long -> two ``(B or 1, 1, L, hd/2)``."""
        if positions.dim() == 1:
            positions = positions[None]
        if int(positions.max()) >= self.cos.shape[0] or int(positions.min()) < 0:
            raise ValueError(f"position outside 0..{self.cos.shape[0] - 1}")
        return self.cos[positions][:, None], self.sin[positions][:, None]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x: (B, H, L, hd)`` by the angles in ``cos, sin: (B, 1, L, hd/2)``."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).type_as(x)


class KVCache:
    """Static keys/values of every layer for one request, written in place.

    Args:
        num_layers, batch, num_heads, head_dim: the model's and the request's shape.
        length: the positions the request needs (start token + steps), at most the context.
        device, dtype: where and how to store it.

    Attributes:
        keys, values: ``(num_layers, B, H, L, hd)``.
        length: how many positions are filled.
    """

    def __init__(
        self,
        *,
        num_layers: int,
        batch: int,
        num_heads: int,
        head_dim: int,
        length: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (num_layers, batch, num_heads, length, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @property
    def capacity(self) -> int:
        """The number of positions the cache was allocated for."""
        return self.keys.shape[3]

    def reset(self) -> None:
        """Forget every position (the memory is kept and overwritten)."""
        self.length = 0


class SelfAttention(nn.Module):
    """Multi-head self-attention with RoPE; causal or bidirectional, optionally cached.

    Args:
        dim: model width D.
        num_heads: heads H (``dim % num_heads == 0``).
        dropout: attention and output dropout in training.
        bias: whether the projections carry a bias.
    """

    def __init__(self, *, dim: int, num_heads: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.dropout = dropout

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        *,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """Attend ``x: (B, L, D)``; with a cache, ``x`` holds the next L positions.

        ``attn_mask: (B, 1, L, L_keys)`` bool (True = may attend) overrides ``is_causal``.
        """
        q, k, v = rearrange(
            self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.num_heads
        )
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            start, end = cache.length, cache.length + x.shape[1]
            if end > cache.capacity:
                raise ValueError(f"KV cache of {cache.capacity} positions cannot hold {end}")
            cache.keys[layer, :, :, start:end] = k
            cache.values[layer, :, :, start:end] = v
            k, v = cache.keys[layer, :, :, :end], cache.values[layer, :, :, :end]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal and attn_mask is None,
        )
        y = F.dropout(self.proj(rearrange(y, "b h l d -> b l (h d)")), self.dropout, self.training)
        return y


class MLP(nn.Module):
    """The position-wise feed-forward layer: Linear -> GELU -> Linear (nanoGPT)."""

    def __init__(self, *, dim: int, hidden: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, L, D) -> (B, L, D)``."""
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """A pre-norm Transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(
        self, *, dim: int, num_heads: int, mlp_ratio: float, dropout: float, bias: bool
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, bias=bias)
        self.attn = SelfAttention(dim=dim, num_heads=num_heads, dropout=dropout, bias=bias)
        self.ln_2 = nn.LayerNorm(dim, bias=bias)
        self.mlp = MLP(dim=dim, hidden=int(mlp_ratio * dim), dropout=dropout, bias=bias)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], **attn_kwargs) -> Tensor:
        """``x: (B, L, D) -> (B, L, D)``; ``attn_kwargs`` go to :class:`SelfAttention`."""
        x = x + self.attn(self.ln_1(x), rope, **attn_kwargs)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of pre-norm blocks with RoPE and a final LayerNorm.

    Args:
        dim, num_heads, num_layers, mlp_ratio, dropout, bias: the block shape.
        max_positions: the largest position + 1 (the trained context).
        rope_base: RoPE frequency base.
    """

    @classmethod
    def from_config(cls, config: Any, max_positions: int) -> Transformer:
        """The stack a prior's config describes (``dim``, ``num_heads``, ``num_layers``,
        ``mlp_ratio``, ``dropout``, ``bias``, ``rope_base``), for ``max_positions``."""
        return cls(
            dim=config.dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            mlp_ratio=config.mlp_ratio,
            dropout=config.dropout,
            bias=config.bias,
            max_positions=max_positions,
            rope_base=config.rope_base,
        )

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        num_layers: int,
        mlp_ratio: float,
        dropout: float,
        bias: bool,
        max_positions: int,
        rope_base: float,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.rope = RotaryEmbedding(dim // num_heads, max_positions, rope_base)
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout, bias=bias)
            for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(dim, bias=bias)
        self.apply(self._init_weights)
        # GPT-2 / nanoGPT: scale the residual projections by 1/sqrt(2 * layers)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * num_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def new_cache(self, batch: int, length: int, like: Tensor) -> KVCache:
        """A cache for ``batch`` sequences of ``length`` positions, on ``like``'s device/dtype."""
        first = self.blocks[0].attn.qkv.weight
        return KVCache(
            num_layers=len(self.blocks),
            batch=batch,
            num_heads=self.num_heads,
            head_dim=first.shape[1] // self.num_heads,
            length=length,
            device=like.device,
            dtype=like.dtype,
        )

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
    ) -> Tensor:
        """``x: (B, L, D)`` at ``positions: (B, L)`` or ``(L,)`` -> normalised ``(B, L, D)``."""
        rope = self.rope(positions)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, attn_mask=attn_mask, is_causal=is_causal, cache=cache, layer=i)
        if cache is not None:
            cache.length += x.shape[1]
        return self.ln_f(x)


def weight_decay_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: decay matrices and embeddings, not biases or norms.

    nanoGPT's ``configure_optimizers`` rule (every parameter with 2+ dimensions decays), so
    ``torch.optim.AdamW(weight_decay_groups(prior, 0.1), lr=...)`` trains like nanoGPT.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
