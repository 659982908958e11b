"""Comparing a saved state dict with a module, and loading it with a one-line error.

Both kinds of saved state use it: training checkpoints (:mod:`audiotok.training.checkpoint`,
:mod:`audiotok.training.export`) and exported models (:mod:`audiotok.hub`). torch's own
``load_state_dict`` error is a multi-line block that starts with ``Error(s) in loading
state_dict for SoundStream:`` and, cut to its first line as a one-line message must be, names
nothing; :func:`state_dict_mismatch` names the first mismatching keys in full instead.

The module imports nothing from audiotok but :mod:`audiotok.errors`, and not torch at import
time, so that any layer may use it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from audiotok.errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = ["state_dict_mismatch", "load_state_strict"]


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in getattr(t, "shape", ()))


def state_dict_mismatch(
    expected: Mapping[str, Any],
    given: Mapping[str, Any],
    limit: int = 3,
    *,
    optional: Collection[str] = (),
) -> str | None:
    """Say how a state dict differs from what a module expects, in one line.

    Args:
        expected: the module's ``state_dict()`` (names -> tensors).
        given: the loaded state dict.
        limit: full key names listed per kind before ``(+N more)``.
        optional: expected names that may be absent from ``given`` (e.g. tied weights that
            safetensors stores once).

    Returns:
        None when the names and shapes agree, else e.g. ``missing encoder.proj.weight,
        encoder.proj.bias; unexpected decoder.lstm.weight_ih_l0; shape quantizer.codebook:
        saved (64, 16), model (1024, 16)``.
    """
    missing = [k for k in expected if k not in given and k not in optional]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k}: saved {_shape(given[k])}, model {_shape(expected[k])}"
        for k in expected
        if k in given and _shape(given[k]) != _shape(expected[k])
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label} {', '.join(items[:limit])}{more}")
    return "; ".join(parts) or None


def load_state_strict(
    module: torch.nn.Module,
    state: Mapping[str, Any],
    what: str,
    *,
    optional: Collection[str] = (),
) -> None:
    """``module.load_state_dict(state)``, with a one-line error naming the first mismatches.

    Args:
        module: the module to fill.
        state: its saved state dict.
        what: the start of the error message (``checkpoint does not match the recipe's model``).
        optional: module state names that ``state`` may leave out (see
            :func:`state_dict_mismatch`); they keep the module's values.

    Raises:
        UserError: ``"<what>: missing ...; unexpected ...; shape ..."`` (see
            :func:`state_dict_mismatch`), or the last line of torch's own error for anything
            else it refuses.
    """
    problem = state_dict_mismatch(module.state_dict(), state, optional=optional)
    if problem is not None:
        raise UserError(f"{what}: {problem}")
    try:
        # names and shapes are checked above; strict=False only admits the optional names
        module.load_state_dict(state, strict=not optional)
    except RuntimeError as exc:  # e.g. a dtype torch cannot copy
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise UserError(f"{what}: {lines[-1] if lines else type(exc).__name__}") from None
