"""Product and grouped residual quantization (Jegou et al. 2011; HiFi-Codec arXiv:2305.02765).

:class:`ProductQuantizer` splits the D channels into G equal groups and quantizes each with
its own quantizer, so G codebooks of size K address ``K**G`` combinations at the cost of G
small searches. :class:`GroupedResidualQuantizer` uses a residual quantizer in every group
(group-residual VQ).

Codes are laid out *stage-major*: ``codes[..., s * G + g]`` is stage ``s`` of group ``g``.
So the first ``m = k * G`` codebooks are exactly the first ``k`` residual stages of every
group, and "keep the first m codebooks" means the same thing as for a plain residual
quantizer (a lower bitrate), as long as ``m`` is a multiple of G.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from audiotok.quantize.base import Quantizer, QuantizerOutput
from audiotok.quantize.residual import ResidualQuantizer

__all__ = ["ProductQuantizer", "GroupedResidualQuantizer"]


class ProductQuantizer(Quantizer):
    """Quantize G channel groups independently and concatenate the results.

    Args:
        dim: D, divisible by ``groups``.
        groups: G.
        quantizers: a factory called with the group dimension ``D // G`` (G times), or a
            sequence of G quantizers of that dimension. All must share ``codebook_size`` and
            ``num_codebooks``.

    Shapes:
        ``forward(z: (B, ..., D)) -> quantized (B, ..., D), codes (B, ..., G * S)`` where S
        is the number of codebooks of each group (1 for plain VQ groups), stage-major.
    """

    def __init__(
        self,
        dim: int,
        groups: int,
        quantizers: Callable[[int], Quantizer] | Sequence[Quantizer],
    ) -> None:
        super().__init__()
        if groups < 1 or dim % groups:
            raise ValueError(f"groups must be a positive divisor of dim={dim}, got {groups}")
        group_dim = dim // groups
        if callable(quantizers) and not isinstance(quantizers, nn.Module):
            made = [quantizers(group_dim) for _ in range(groups)]
        else:
            made = list(quantizers)  # type: ignore[arg-type]
        if len(made) != groups:
            raise ValueError(f"expected {groups} group quantizers, got {len(made)}")
        if any(q.dim != group_dim for q in made):
            raise ValueError(f"every group quantizer must have dim {group_dim}")
        sizes = {q.codebook_size for q in made}
        per_group = {q.num_codebooks for q in made}
        if len(sizes) != 1 or len(per_group) != 1:
            raise ValueError("group quantizers must share codebook_size and num_codebooks")
        self.groups = nn.ModuleList(made)
        self.dim = dim
        self.group_dim = group_dim
        self.num_groups = groups
        self.codebook_size = sizes.pop()
        self.codebooks_per_group = per_group.pop()
        self.num_codebooks = groups * self.codebooks_per_group

    @property
    def codes_have_codebook_dim(self) -> bool:
        return True

    def extra_repr(self) -> str:
        return f"dim={self.dim}, groups={self.num_groups}, num_codebooks={self.num_codebooks}"

    # -- layout ------------------------------------------------------------------------------
    def _split(self, z: Tensor) -> list[Tensor]:
        return list(z.split(self.group_dim, dim=-1))

    def _interleave(self, group_codes: list[Tensor]) -> Tensor:
        """G group codes ``(B, ..., S)`` or ``(B, ...)`` -> ``(B, ..., S * G)`` stage-major."""
        parts = [
            c if q.codes_have_codebook_dim else c.unsqueeze(-1)
            for c, q in zip(group_codes, self.groups, strict=True)
        ]
        stacked = torch.stack(parts, dim=-1)  # (B, ..., S, G)
        return stacked.flatten(-2)

    def _deinterleave(self, codes: Tensor) -> list[Tensor]:
        """``(B, ..., S * G)`` -> G group codes ``(B, ..., S)`` (or ``(B, ...)`` for S = 1)."""
        by_group = codes.unflatten(-1, (-1, self.num_groups))  # (B, ..., S, G)
        out = []
        for g, q in enumerate(self.groups):
            c = by_group[..., g]
            out.append(c if q.codes_have_codebook_dim else c.squeeze(-1))
        return out

    # -- contract ------------------------------------------------------------------------------
    def _forward(self, z: Tensor) -> QuantizerOutput:
        outs = [q._forward(part) for q, part in zip(self.groups, self._split(z), strict=True)]
        return self._combine(outs)

    def _combine(self, outs: list[QuantizerOutput]) -> QuantizerOutput:
        quantized = torch.cat([o.quantized for o in outs], dim=-1)
        codes = self._interleave([o.codes for o in outs])
        loss = torch.stack([o.loss for o in outs]).sum()
        # (G, S, K) -> (S * G, K), in the order of the codes
        counts = torch.stack([o.metrics["counts"].reshape(-1, self.codebook_size) for o in outs])
        counts = counts.transpose(0, 1).reshape(-1, self.codebook_size)
        perplexity = torch.stack([o.metrics["perplexity"] for o in outs])
        usage = torch.stack([o.metrics["usage"] for o in outs])
        metrics = {
            "perplexity": perplexity.mean(),
            "usage": usage.mean(),
            "counts": counts,
            "perplexity_per_group": perplexity,
            "usage_per_group": usage,
        }
        return QuantizerOutput(quantized, codes, loss, metrics)

    def _encode(self, z: Tensor) -> Tensor:
        parts = self._split(z)
        return self._interleave([q._encode(p) for q, p in zip(self.groups, parts, strict=True)])

    def _decode(self, codes: Tensor) -> Tensor:
        per_group = self._deinterleave(codes)
        decoded = [q._decode(c) for q, c in zip(self.groups, per_group, strict=True)]
        return torch.cat(decoded, dim=-1)

    def check_codes(self, codes: Tensor, num_codebooks: int | None = None) -> None:
        super().check_codes(codes, num_codebooks)
        if codes.shape[-1] % self.num_groups:
            raise ValueError(
                f"expected codes (B, ..., m) with m a multiple of the {self.num_groups} groups "
                f"(the first m / {self.num_groups} stages of every group), "
                f"got {tuple(codes.shape)}"
            )
        if self.codebooks_per_group == 1 and codes.shape[-1] != self.num_groups:
            raise ValueError(
                f"expected codes (B, ..., {self.num_groups}), got {tuple(codes.shape)}"
            )


class GroupedResidualQuantizer(ProductQuantizer):
    """A residual quantizer of K stages in each of G channel groups.

    Args:
        dim: D, divisible by ``groups``.
        groups: G.
        stage: factory called with the group dimension ``D // G`` for each of the G * K stages.
        num_codebooks: K, residual stages per group (``self.num_codebooks`` is G * K).
        dropout: quantizer dropout probability; a dropped sample uses the same random number
            of stages in every group.

    Shapes:
        ``forward(z: (B, ..., D), num_codebooks=m) -> codes (B, ..., m)``, stage-major
        (``codes[..., s * G + g]`` is stage ``s`` of group ``g``); ``m`` must be a multiple
        of G, and the first ``m / G`` stages of each group are used.
    """

    groups: nn.ModuleList

    def __init__(
        self,
        dim: int,
        groups: int,
        stage: Callable[[int], Quantizer],
        num_codebooks: int,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            dim,
            groups,
            lambda d: ResidualQuantizer.from_factory(
                lambda: stage(d), num_codebooks, dropout=dropout
            ),
        )

    def _residuals(self) -> list[ResidualQuantizer]:
        return list(self.groups)  # type: ignore[arg-type]

    @property
    def supports_partial_codebooks(self) -> bool:
        return True

    def check_num_codebooks(self, num_codebooks: int | None) -> int:
        """Like the base check, and ``num_codebooks`` must be a multiple of the groups."""
        return self._stages_per_group(num_codebooks) * self.num_groups

    def _stages_per_group(self, num_codebooks: int | None) -> int:
        """Total codebooks ``m`` (a multiple of G) -> stages per group ``m / G``."""
        if num_codebooks is None:
            return self.codebooks_per_group
        g = self.num_groups
        if (
            isinstance(num_codebooks, bool)
            or not isinstance(num_codebooks, numbers.Integral)
            or num_codebooks % g
            or not 1 <= num_codebooks // g <= self.codebooks_per_group
        ):
            raise ValueError(
                f"num_codebooks must be a multiple of the {g} groups in "
                f"[{g}, {self.num_codebooks}], got {num_codebooks}"
            )
        return int(num_codebooks) // g

    def forward(self, z: Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        """Quantize ``z: (B, ..., D)`` with the first ``num_codebooks`` codebooks (all if None)."""
        self.check_input(z)
        k = self._stages_per_group(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            z32 = z.float()
            n_used = self._residuals()[0].stage_counts(z.shape[0], k, z.device)
            outs = [
                q._forward(part, k, n_used)
                for q, part in zip(self._residuals(), self._split(z32), strict=True)
            ]
            out = self._combine(outs)
        out.quantized = out.quantized.to(z.dtype)
        return out

    @torch.no_grad()
    def encode(self, z: Tensor, num_codebooks: int | None = None) -> Tensor:
        """Vectors ``(B, ..., D)`` to codes ``(B, ..., m)``, ``m = num_codebooks or G * K``."""
        self.check_input(z)
        k = self._stages_per_group(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            parts = self._split(z.float())
            return self._interleave(
                [q._encode(p, k) for q, p in zip(self._residuals(), parts, strict=True)]
            )
