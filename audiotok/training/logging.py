"""Training logs: a JSONL metrics file, optional TensorBoard, and a rich progress bar.

Every logged line of ``run_dir/metrics.jsonl`` is one JSON object ``{"step", "split",
"time", <metric>: value, ...}`` (``split`` is ``train`` or ``val``). On resume the lines past
the checkpoint's step are dropped, so the file reads as one uninterrupted run. TensorBoard
events go to ``run_dir/tensorboard`` when the ``tensorboard`` package is importable. Only the
main rank creates a logger that writes (``enabled=False`` elsewhere).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from audiotok.atomic import open_atomic

__all__ = ["MetricsLogger", "window_code_stats"]

METRICS_NAME = "metrics.jsonl"


def window_code_stats(counts: Any) -> dict[str, float]:
    """Usage and perplexity per codebook from accumulated counts ``(K, codebook_size)``.

    Returns:
        ``usage/k`` (fraction of codes used at least once), ``perplexity/k``
        (``2 ** entropy`` of the code distribution), and their means ``usage``, ``perplexity``.
    """
    import torch

    counts = counts.double()
    total = counts.sum(-1, keepdim=True).clamp(min=1)
    probs = counts / total
    entropy = -(probs * probs.clamp(min=1e-12).log2()).sum(-1)
    usage = (counts > 0).double().mean(-1)
    perplexity = torch.exp2(entropy)
    out: dict[str, float] = {
        "usage": float(usage.mean()),
        "perplexity": float(perplexity.mean()),
    }
    if counts.shape[0] > 1:
        for k in range(counts.shape[0]):
            out[f"usage/{k}"] = float(usage[k])
            out[f"perplexity/{k}"] = float(perplexity[k])
    return out


def _step_of(line: str) -> int | None:
    """The step of a JSONL record, or None for a blank or torn (killed mid-write) line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return int(record["step"]) if isinstance(record, dict) and "step" in record else None


def _plain(value: Any) -> float | int | str:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLogger:
    """JSONL + TensorBoard + progress bar, for one rank.

    Args:
        run_dir: where ``metrics.jsonl`` and ``tensorboard/`` go.
        total_steps: the run's last step (for the progress bar and ETA).
        start_step: the step the run (re)starts from.
        enabled: False on non-main ranks: every method is then a no-op.
        tensorboard: also write TensorBoard events when the package is importable.
        progress: show a rich progress bar on stderr.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        total_steps: int,
        start_step: int = 0,
        enabled: bool = True,
        tensorboard: bool = True,
        progress: bool = True,
    ) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / METRICS_NAME
        self._tb = None
        self._progress = None
        self._task = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(start_step)
        self._file = self.path.open("a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                pass
            else:
                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=start_step)
        if progress:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[summary]}"),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=total_steps, completed=start_step, rate="", summary=""
            )

    def _truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (a run resumed from an earlier checkpoint)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        steps = [_step_of(ln) for ln in lines]
        kept = [ln for ln, s in zip(lines, steps, strict=True) if s is not None and s <= step]
        if len(kept) == len(lines):
            return
        with open_atomic(self.path, force=True, text=True) as f:
            f.writelines(kept)

    def log(self, step: int, split: str, values: dict[str, Any]) -> None:
        """Append one record ``{"step", "split", "time", **values}`` (and TensorBoard scalars)."""
        if not self.enabled:
            return
        record = {"step": step, "split": split, "time": round(time.time(), 3)}
        record.update({k: _plain(v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in values.items():
                v = _plain(value)
                if isinstance(v, int | float):
                    self._tb.add_scalar(f"{split}/{key}", v, step)

    def progress(self, step: int, steps_per_s: float, summary: dict[str, float]) -> None:
        """Move the bar to ``step`` and show a short summary (losses, bitrate, usage)."""
        if self._progress is None:
            return
        text = "  ".join(f"{k} {v:.3g}" for k, v in summary.items())
        self._progress.update(
            self._task, completed=step, rate=f"{steps_per_s:.2f} it/s", summary=text
        )

    def message(self, text: str) -> None:
        """A line above the bar (or on stderr without one)."""
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            import sys

            print(text, file=sys.stderr)

    def close(self) -> None:
        """Flush and close everything (safe to call twice)."""
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if not self._file.closed:
            self._file.close()
