"""EnCodec's loss balancer (arXiv:2210.13438, section 3.4).

Each audio loss ``l_i`` (mel, STFT, adversarial, ...) depends on the model only through the
reconstruction ``y``. Instead of back-propagating ``sum_i w_i l_i``, the balancer takes the
gradients ``g_i = d l_i / d y``, divides each by a running average of its norm and mixes them
with the normalised weights ``w_i / sum w``, so a loss's share of the update is set by its
weight alone, whatever its scale. The combined gradient is then back-propagated through the
model in a single backward call (which keeps DistributedDataParallel's one-backward rule).

The running averages are bias-corrected exponential moving averages; under DDP the per-step
norms are averaged over ranks first so that every rank applies the same scales.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Balancer"]


class Balancer:
    """Combine per-loss gradients with respect to one output tensor.

    Args:
        weights: loss name -> weight (zero-weight losses are ignored).
        decay: EMA decay of the gradient norms.
        total_norm: the norm of the combined gradient when all losses pull alike.
        eps: added to the norms before dividing.
    """

    def __init__(
        self,
        weights: dict[str, float],
        *,
        decay: float = 0.999,
        total_norm: float = 1.0,
        eps: float = 1e-12,
    ) -> None:
        self.weights = {k: float(w) for k, w in weights.items() if w > 0}
        self.decay = decay
        self.total_norm = total_norm
        self.eps = eps
        self._sum: dict[str, float] = {}
        self._count: dict[str, float] = {}

    def gradient(self, losses: dict[str, Tensor], output: Tensor) -> tuple[Tensor, dict]:
        """The balanced gradient ``d(total)/d output`` and the norms seen, for logging.

        Args:
            losses: name -> scalar loss computed from ``output`` (names in ``weights``).
            output: the tensor the losses depend on, e.g. the reconstruction ``(B, C, T)``.

        Returns:
            ``(grad, norms)``: ``grad`` has ``output``'s shape; ``norms`` maps each loss to
            the mean per-item gradient norm of this step.
        """
        names = [n for n in losses if n in self.weights]
        per_loss: dict[str, Tensor] = {}
        norms = torch.zeros(len(names), device=output.device, dtype=torch.float32)
        for i, name in enumerate(names):
            (g,) = torch.autograd.grad(losses[name], output, retain_graph=True)
            per_loss[name] = g
            norms[i] = g.float().flatten(1).norm(dim=1).mean()
        if dist.is_available() and dist.is_initialized() and names:
            dist.all_reduce(norms)
            norms /= dist.get_world_size()
        total_weight = sum(self.weights[n] for n in names)
        combined = torch.zeros_like(output)
        seen: dict[str, float] = {}
        for i, name in enumerate(names):
            value = float(norms[i])
            seen[name] = value
            self._sum[name] = self.decay * self._sum.get(name, 0.0) + value
            self._count[name] = self.decay * self._count.get(name, 0.0) + 1.0
            avg = self._sum[name] / self._count[name]
            scale = self.weights[name] / total_weight * self.total_norm / (self.eps + avg)
            combined = combined + scale * per_loss[name]
        return combined, seen

    def state_dict(self) -> dict[str, dict[str, float]]:
        """The running averages (plain floats, checkpoint-friendly)."""
        return {"sum": dict(self._sum), "count": dict(self._count)}

    def load_state_dict(self, state: dict[str, dict[str, float]]) -> None:
        """Restore :meth:`state_dict`."""
        self._sum = {k: float(v) for k, v in state.get("sum", {}).items()}
        self._count = {k: float(v) for k, v in state.get("count", {}).items()}
