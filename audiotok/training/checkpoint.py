"""Training checkpoints for exact resume: atomic writes, keep-last-N, RNG state capture.

A checkpoint is one ``torch.save`` file ``run_dir/checkpoints/step_00001000.pt`` holding only
tensors and plain Python containers, so that ``torch.load(path, weights_only=True)`` reads it
(no pickled classes). The trainer fills it with the model, discriminator, both optimisers and
schedulers, the step, the data position (epoch and batches consumed in that epoch), the RNG
states of every rank and the recipe as a dict. Writes go through :mod:`audiotok.atomic` (a
temporary file in the same folder, synced, then renamed; the umask's mode), so a run killed
mid-write never leaves a truncated checkpoint behind.

RNG states are stored as tensors: torch's own byte tensors, numpy's MT19937 key as an int64
tensor, Python's ``random`` state as an int64 tensor plus its version and cached gaussian.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotok.atomic import open_atomic
from audiotok.errors import UserError
from audiotok.statedict import load_state_strict, state_dict_mismatch

__all__ = [
    "CHECKPOINT_DIR",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "prune_checkpoints",
    "rng_state",
    "set_rng_state",
    "state_dict_mismatch",
    "load_state_strict",
]

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """``run_dir/checkpoints/step_<step:08d>.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The run's checkpoints sorted by step, oldest first (temporary files are ignored)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint of a run, or ``None`` when it has none."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` atomically (:func:`audiotok.atomic.open_atomic`; the umask's mode).

    Args:
        state: tensors and plain containers only (checked by the ``weights_only`` loader).
        path: destination file; its folder is created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path, force=True, sync=True) as f:  # a re-run step replaces its own file
        torch.save(state, f)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(..., weights_only=True)``.

    Raises:
        UserError: the file is missing or is not a readable audiotok checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a torch file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UserError(f"{path} is not an audiotok training checkpoint")
    return state


def prune_checkpoints(run_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints; return the deleted paths."""
    found = list_checkpoints(run_dir)
    doomed = found[: max(len(found) - keep_last, 0)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, numpy, Python ``random``) as tensors."""
    np_key, np_state, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": str(np_key),
            "state": torch.from_numpy(np.asarray(np_state, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only where CUDA is in use)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (
            n["key"],
            n["state"].cpu().numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
