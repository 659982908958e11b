"""Product and grouped residual quantization (Jegou et al. 2011; HiFi-Codec arXiv:2305.02765).

:class:`ProductQuantizer` splits the D channels into G equal groups and quantizes each with
its own quantizer, so G codebooks of size K address ``K**G`` combinations at the cost of G
small searches. :class:`GroupedResidualQuantizer` uses a residual quantizer in every group
(group-residual VQ); its codes are laid out group-major, ``(B, ..., G * k)``.
"""

from __future__ import annotations

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
            sequence of G quantizers of that dimension. All must share ``codebook_size``.

    Shapes:
        ``forward(z: (B, ..., D)) -> quantized (B, ..., D), codes (B, ..., G)`` for
        single-codebook groups, or ``(B, ..., G * K)`` (group-major) for K-codebook groups.
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

    def _split(self, z: Tensor) -> list[Tensor]:
        return list(z.split(self.group_dim, dim=-1))

    def _group_codes(self, codes: Tensor, quantizer: Quantizer) -> Tensor:
        """Group codes ``(B, ...)`` or ``(B, ..., K)`` as ``(B, ..., K)``."""
        return codes if quantizer.codes_have_codebook_dim else codes.unsqueeze(-1)

    def _forward(self, z: Tensor) -> QuantizerOutput:
        outs = [q._forward(part) for q, part in zip(self.groups, self._split(z), strict=True)]
        return self._combine(outs)

    def _combine(self, outs: list[QuantizerOutput]) -> QuantizerOutput:
        quantized = torch.cat([o.quantized for o in outs], dim=-1)
        codes = torch.cat(
            [self._group_codes(o.codes, q) for o, q in zip(outs, self.groups, strict=True)],
            dim=-1,
        )
        loss = torch.stack([o.loss for o in outs]).sum()
        counts = torch.cat([o.metrics["counts"].reshape(-1, self.codebook_size) for o in outs])
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
        return torch.cat(
            [self._group_codes(q._encode(p), q) for q, p in zip(self.groups, parts, strict=True)],
            dim=-1,
        )

    def _decode(self, codes: Tensor) -> Tensor:
        k = codes.shape[-1] // self.num_groups
        if k * self.num_groups != codes.shape[-1]:
            raise ValueError(
                f"expected codes (B, ..., G * k) with G = {self.num_groups}, "
                f"got {tuple(codes.shape)}"
            )
        parts = codes.split(k, dim=-1)
        decoded = [
            q._decode(p if q.codes_have_codebook_dim else p.squeeze(-1))
            for q, p in zip(self.groups, parts, strict=True)
        ]
        return torch.cat(decoded, dim=-1)

    def check_codes(self, codes: Tensor, num_codebooks: int | None = None) -> None:
        super().check_codes(codes, num_codebooks)
        per_group = self.codebooks_per_group if num_codebooks is None else num_codebooks
        if codes.shape[-1] % self.num_groups or codes.shape[-1] // self.num_groups > per_group:
            raise ValueError(
                f"expected codes (B, ..., G * k) with G = {self.num_groups} and "
                f"1 <= k <= {self.codebooks_per_group}, got {tuple(codes.shape)}"
            )
        if not self.groups[0].codes_have_codebook_dim and codes.shape[-1] != self.num_groups:
            raise ValueError(
                f"expected codes (B, ..., {self.num_groups}), got {tuple(codes.shape)}"
            )


class GroupedResidualQuantizer(ProductQuantizer):
    """A residual quantizer of K stages in each of G channel groups.

    Args:
        dim: D, divisible by ``groups``.
        groups: G.
        stage: factory called with the group dimension ``D // G`` for each of the G * K stages.
        num_codebooks: K, residual stages per group.
        dropout: quantizer dropout probability; a dropped sample uses the same random number
            of stages in every group.

    Shapes:
        ``forward(z: (B, ..., D), num_codebooks=k) -> codes (B, ..., G * k)`` group-major:
        ``codes[..., g * k + i]`` is stage ``i`` of group ``g``.
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

    def _k(self, num_codebooks: int | None) -> int:
        return self._residuals()[0]._check_num_codebooks(num_codebooks)

    def forward(self, z: Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        """Quantize ``z: (B, ..., D)`` with the first ``num_codebooks`` stages of each group."""
        self.check_input(z)
        k = self._k(num_codebooks)
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
        """Vectors ``(B, ..., D)`` to codes ``(B, ..., G * k)``, ``k = num_codebooks or K``."""
        self.check_input(z)
        k = self._k(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            parts = self._split(z.float())
            return torch.cat(
                [q._encode(p, k) for q, p in zip(self._residuals(), parts, strict=True)], dim=-1
            )
