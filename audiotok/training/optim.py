"""Optimisers and learning-rate schedules: AdamW, linear warm-up, then cosine or constant.

The learning rate is a pure function of the step: :class:`StepLR` sets
``base_lr * schedule(step)`` on the optimiser and its checkpoint state is the step alone, so a
resumed run can take the recipe's schedule, learning rate and betas (a longer run, a
fine-tuning phase) through one public method instead of patching a ``LambdaLR``'s private
fields. Cosine decay follows SGDR (arXiv:1608.03983) without restarts, from ``lr`` down to
``lr * min_lr_ratio`` at ``max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["WarmupSchedule", "StepLR", "build_optimizer"]


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


class StepLR:
    """``lr = base_lr * schedule(step)`` on every param group of ``optimizer``.

    Args:
        optimizer: the optimiser whose learning rate is driven.
        schedule: the multiplier per step.
        base_lr: the recipe's learning rate.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, schedule: WarmupSchedule, base_lr: float
    ) -> None:
        self.optimizer, self.schedule, self.base_lr = optimizer, schedule, float(base_lr)
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        lr = self.base_lr * self.schedule(self.last_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Advance one optimiser step."""
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each param group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def retune(
        self, schedule: WarmupSchedule, base_lr: float, betas: tuple[float, float] | None = None
    ) -> None:
        """Take another schedule, learning rate and (Adam) betas from this step on."""
        self.schedule, self.base_lr = schedule, float(base_lr)
        if betas is not None:
            for group in self.optimizer.param_groups:
                group["betas"] = tuple(float(b) for b in betas)
        self._apply()

    def state_dict(self) -> dict[str, int]:
        """``{"step": n}``: the schedule itself comes from the recipe."""
        return {"step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; also reads a ``LambdaLR`` state (``last_epoch``), the
        format of checkpoints written before this class existed."""
        self.last_step = int(state["step"] if "step" in state else state["last_epoch"])
        self._apply()


def build_optimizer(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    schedule: WarmupSchedule,
) -> tuple[torch.optim.AdamW, StepLR]:
    """AdamW over ``params`` (those with ``requires_grad``) and its :class:`StepLR`."""
    trainable = [p for p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=betas, weight_decay=weight_decay)
    return optimizer, StepLR(optimizer, schedule, lr)
