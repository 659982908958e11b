"""Optimisers and learning-rate schedules: AdamW, linear warm-up, then cosine or constant.

The schedule is a small picklable callable (not a lambda) so that ``LambdaLR.state_dict``
stores its plain attributes and a checkpoint stays loadable with ``weights_only=True``.
Cosine decay follows SGDR (arXiv:1608.03983) without restarts, from ``lr`` down to
``lr * min_lr_ratio`` at ``max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["WarmupSchedule", "build_optimizer"]


class WarmupSchedule:
    """LR multiplier at optimiser step ``s``: linear warm-up, then cosine decay or constant.

    Args:
        warmup_steps: steps of linear warm-up from ``1 / warmup_steps`` to 1.
        max_steps: the step where cosine decay reaches ``min_lr_ratio``.
        schedule: ``"cosine"`` or ``"constant"``.
        min_lr_ratio: the final multiplier of the cosine schedule.
    """

    def __init__(
        self,
        warmup_steps: int,
        max_steps: int,
        schedule: str = "cosine",
        min_lr_ratio: float = 0.1,
    ) -> None:
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {schedule!r}")
        self.warmup_steps = int(warmup_steps)
        self.max_steps = int(max_steps)
        self.schedule = schedule
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        span = max(self.max_steps - self.warmup_steps, 1)
        progress = min(max((step - self.warmup_steps) / span, 0.0), 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


def build_optimizer(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    schedule: WarmupSchedule,
) -> tuple[torch.optim.AdamW, LambdaLR]:
    """AdamW over ``params`` (those with ``requires_grad``) and its ``LambdaLR`` schedule."""
    trainable = [p for p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=betas, weight_decay=weight_decay)
    return optimizer, LambdaLR(optimizer, schedule)
