"""Finite scalar quantization (FSQ, arXiv:2309.15505): an implicit grid codebook.

Each of the ``d = len(levels)`` channels is bounded to a few integer levels and rounded; the
code of a vector is its grid point read as a mixed-radix number, so the codebook size is
``prod(levels)`` and there is nothing to learn, no auxiliary loss and no collapse. When the
input dimension ``dim`` differs from ``d``, linear layers project in and out.

Gradients: rounding uses the straight-through estimator, but the bound ``tanh`` is part of
the graph, so ``d quantized / d z = bound'(z) / half_width`` elementwise (not the identity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from audiotok.quantize import functional as QF
from audiotok.quantize.base import Quantizer, QuantizerOutput

__all__ = ["FSQ"]


class FSQ(Quantizer):
    """Finite scalar quantizer with per-channel ``levels``.

    Args:
        levels: number of levels of each quantized channel, e.g. ``[8, 5, 5, 5]`` (1000
            codes); each must be >= 2.
        dim: D, the input dimension; defaults to ``len(levels)``, otherwise the input is
            projected to ``len(levels)`` channels and back.
        eps: shrinks the bound slightly so that ``tanh`` never reaches a rounding boundary.

    Shapes:
        ``forward(z: (B, ..., D)) -> QuantizerOutput(quantized (B, ..., D), codes (B, ...))``;
        without projection ``quantized`` lies on the grid, each channel in ``[-1, 1]``.
    """

    levels: Tensor
    basis: Tensor

    def __init__(self, levels: Sequence[int], dim: int | None = None, *, eps: float = 1e-3) -> None:
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or min(levels) < 2:
            raise ValueError(f"levels must be a non-empty list of ints >= 2, got {levels}")
        self.level_list = levels
        self.codebook_dim = len(levels)
        self.dim = self.codebook_dim if dim is None else dim
        self.codebook_size = math.prod(levels)
        self.eps = eps
        basis = [1]
        for v in levels[:-1]:
            basis.append(basis[-1] * v)
        levels_t = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", levels_t, persistent=False)
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.long), persistent=False)
        # constants of the bound, computed once (float64 then rounded to float32)
        half_l = (levels_t.double() - 1) * (1 + eps) / 2
        offset = torch.where(levels_t % 2 == 0, 0.5, 0.0).double()
        self.register_buffer("_half_l", half_l.float(), persistent=False)
        self.register_buffer("_offset", offset.float(), persistent=False)
        self.register_buffer("_shift", torch.atanh(offset / half_l).float(), persistent=False)
        self.register_buffer("_half_width_buf", (levels_t // 2).float(), persistent=False)
        self.register_buffer(
            "_float_basis", torch.tensor(basis, dtype=torch.float64).float(), persistent=False
        )
        projected = self.dim != self.codebook_dim
        self.project_in: nn.Module = (
            nn.Linear(self.dim, self.codebook_dim) if projected else nn.Identity()
        )
        self.project_out: nn.Module = (
            nn.Linear(self.codebook_dim, self.dim) if projected else nn.Identity()
        )

    @property
    def has_output_parameters(self) -> bool:
        """True when ``quantized`` goes through a trainable output projection."""
        return self.dim != self.codebook_dim

    def output_path(self, codes: Tensor) -> Tensor:
        """``decode(codes)``, differentiable in ``project_out``: ``(B, ...) -> (B, ..., D)``."""
        return self._decode(codes)

    def extra_repr(self) -> str:
        return f"levels={self.level_list}, dim={self.dim}, codebook_size={self.codebook_size}"

    # -- grid arithmetic -------------------------------------------------------------------
    def _half_width(self) -> Tensor:
        return self._half_width_buf

    def bound(self, z: Tensor) -> Tensor:
        """Squash ``z: (..., d)`` into ``(-L/2, L/2)`` (shifted by 1/2 for even L).

        After rounding, channel ``i`` takes exactly ``levels[i]`` integer values.
        """
        return torch.tanh(z + self._shift) * self._half_l - self._offset

    def _digits_to_codes(self, digits: Tensor) -> Tensor:
        """Grid digits ``(..., d)`` in ``[0, L_i)`` to mixed-radix codes ``(...)``."""
        return (digits * self.basis).sum(dim=-1)

    def codes_to_digits(self, codes: Tensor) -> Tensor:
        """Mixed-radix codes ``(...)`` to grid digits ``(..., d)`` in ``[0, L_i)``."""
        return (codes.unsqueeze(-1) // self.basis) % self.levels

    def _grid(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, D)`` -> (rounded grid values with straight-through ``(N, d)``, codes ``(N,)``)."""
        bounded = self.bound(self.project_in(z))
        rounded = torch.round(bounded)
        if self.codebook_size <= 1 << 24:  # float32 is exact: one small matmul
            codes = ((rounded + self._half_width_buf) @ self._float_basis).long()
        else:
            codes = self._digits_to_codes(rounded.long() + self.levels // 2)
        if bounded.requires_grad:
            # exactly `rounded` in value; the gradient skips the rounding
            rounded = rounded + (bounded - bounded.detach())
        return rounded, codes

    # -- contract ----------------------------------------------------------------------------
    def _forward(self, z: Tensor) -> QuantizerOutput:
        grid, codes = self._grid(z.reshape(-1, self.dim))
        codes = codes.reshape(z.shape[:-1])
        quantized = grid.reshape(*codes.shape, self.codebook_dim) / self._half_width()
        quantized = self.project_out(quantized)
        metrics = QF.usage_metrics(codes, self.codebook_size)
        return QuantizerOutput(quantized, codes, z.new_zeros(()), metrics)

    def _encode(self, z: Tensor) -> Tensor:
        return self._grid(z.reshape(-1, self.dim))[1].reshape(z.shape[:-1])

    def _decode(self, codes: Tensor) -> Tensor:
        grid = (self.codes_to_digits(codes) - self.levels // 2).float()
        return self.project_out(grid / self._half_width())
