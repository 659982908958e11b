"""Format versions of exported models, and the steps that bring old ones up to date.

An export's ``config.json`` records ``format_version`` (:data:`FORMAT_VERSION` when written;
a file without one is version 1, as the bundled default is). When a family renames a
parameter or buffer, or reshapes one, the library's :data:`FORMAT_VERSION` goes up by one and
that family gets a :class:`Migration` from the old version in :data:`MIGRATIONS`; loading an
older export then applies every step from its version on to the state dict (and, where a
step says so, to the config dict) before ``load_state_dict``, so that users' models never
stop loading. The model keeps the ``model_id`` its ``config.json`` records, so token files
made before a migration still decode with it. A version newer than the library knows is
refused with one line: the export was made by a newer audiotok.

Steps are explicit data, read top to bottom, rather than a ``_load_from_state_dict`` hook on
each module: the whole history of the format is in this file. Anchor: moshi's
``_load_from_state_dict`` shims, which rename old keys of a module's state as it loads.

To rename ``quantizer.layers.*`` to ``quantizer.stages.*`` in ``soundstream`` models::

    FORMAT_VERSION = 2
    MIGRATIONS = {"soundstream": (Migration(1, {"quantizer.layers.": "quantizer.stages."}),)}

This module imports nothing from audiotok but :mod:`audiotok.errors`, and not torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audiotok.errors import UserError

__all__ = [
    "FORMAT_VERSION",
    "Migration",
    "MIGRATIONS",
    "format_version_of",
    "migrate_config",
    "migrate_state",
]

#: The format :func:`audiotok.hub.save_pretrained` writes. 1: the first format (also any
#: ``config.json`` without ``format_version``).
FORMAT_VERSION = 1

StateDict = dict[str, Any]


@dataclass(frozen=True)
class Migration:
    """One step of a family's format history: from ``from_version`` to ``from_version + 1``.

    Attributes:
        from_version: the format this step reads.
        renames: old name -> new name of state-dict entries. A name ending in ``.`` renames
            every key that starts with it (a module moved or renamed); other names are exact.
            Names absent from the state dict are skipped (an optional buffer).
        state: applied after ``renames`` to the whole state dict, for anything a rename
            cannot say (split, merge, reshape, drop); returns the new dict.
        config: applied to the model's config dict (a renamed or removed config field).
    """

    from_version: int
    renames: Mapping[str, str] = field(default_factory=dict)
    state: Callable[[StateDict], StateDict] | None = None
    config: Callable[[dict[str, Any]], dict[str, Any]] | None = None


#: family -> its steps, ordered by ``from_version``. A family with no step for a version
#: did not change in it.
MIGRATIONS: dict[str, tuple[Migration, ...]] = {}


def format_version_of(raw: Mapping[str, Any], where: str) -> int:
    """The ``format_version`` of a ``config.json`` object (1 when absent), checked.

    Args:
        raw: the parsed ``config.json``.
        where: the file, for messages.

    Raises:
        UserError: not a whole number >= 1, or newer than :data:`FORMAT_VERSION`.
    """
    version = raw.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 1:
        raise UserError(f"{where}: corrupt config (format_version {version!r} is not an int >= 1)")
    if version > FORMAT_VERSION:
        made_by = raw.get("audiotok_version", "unknown")
        raise UserError(
            f"{where}: made by a newer audiotok ({made_by}, format {version}; this one reads "
            f"formats up to {FORMAT_VERSION}); upgrade audiotok to load it"
        )
    return int(version)


def _rename(state: StateDict, renames: Mapping[str, str]) -> StateDict:
    prefixes = [(old, new) for old, new in renames.items() if old.endswith(".")]
    out: StateDict = {}
    for key, value in state.items():
        new = renames.get(key)
        if new is None:
            new = next((n + key[len(o) :] for o, n in prefixes if key.startswith(o)), key)
        if new in out:
            raise ValueError(f"renaming {key} to {new} clashes with another entry")
        out[new] = value
    return out


def _steps(family: str, version: int) -> list[Migration]:
    """The steps that take a ``family`` export from ``version`` to :data:`FORMAT_VERSION`."""
    steps = sorted(MIGRATIONS.get(family, ()), key=lambda m: m.from_version)
    return [m for m in steps if version <= m.from_version < FORMAT_VERSION]


def _run(family: str, step: Migration, fn: Callable[[Any], Any], arg: Any) -> Any:
    try:
        return fn(arg)
    except (ValueError, KeyError, TypeError) as e:
        where = f"{family} format {step.from_version} -> {step.from_version + 1}"
        raise ValueError(f"{where}: {type(e).__name__ if not str(e) else e}") from None


def migrate_config(family: str, version: int, config: dict[str, Any]) -> dict[str, Any]:
    """Bring the model config dict of a ``family`` export of ``version`` up to date.

    Returns:
        The config in the current format (the same object when no step changes it).

    Raises:
        ValueError: a step failed; the message names the family and the step.
    """
    for step in _steps(family, version):
        if step.config is not None:
            config = _run(family, step, step.config, dict(config))
    return config


def migrate_state(family: str, version: int, state: StateDict) -> StateDict:
    """Bring the state dict of a ``family`` export of ``version`` up to date: each step's
    ``renames``, then its ``state`` function, oldest step first.

    Returns:
        The state dict in the current format (the same object when nothing applies).

    Raises:
        ValueError: a step failed (e.g. two keys renamed onto one name); the message names
            the family and the step.
    """
    for step in _steps(family, version):
        if step.renames:
            state = _run(family, step, lambda s, r=step.renames: _rename(s, r), state)
        if step.state is not None:
            state = _run(family, step, step.state, dict(state))
    return state
