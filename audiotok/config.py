"""Strict frozen configs: the one dict <-> dataclass helper every model config uses.

Model configs (audio codecs, image VQ-VAEs, priors) are frozen dataclasses of plain fields
(ints, floats, strings, bools, tuples of those, and dicts such as a quantizer spec) that
round-trip through JSON: :meth:`StrictConfig.to_dict` gives plain values, and
:meth:`StrictConfig.from_dict` builds one back, rejecting any key that is not a field with a
message that names it (a typo in ``config.json`` or a recipe must never be ignored).
JSON has no tuples, so lists are turned back into tuples where a field is annotated as one.

This module imports only the standard library, so every family can use it (audio and image
never import each other). Anchors: nanoGPT ``GPTConfig``; audiocraft's dataclass configs.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["StrictConfig", "check_keys", "to_plain", "from_plain"]

_C = TypeVar("_C", bound="StrictConfig")


def check_keys(cls: type, d: Any, *, what: str | None = None) -> None:
    """Raise ``ValueError`` unless ``d`` is a dict whose keys are all fields of ``cls``.

    Args:
        cls: a dataclass type.
        d: the candidate dict.
        what: how to name it in the message (default: the class name).
    """
    name = what or cls.__name__
    if not isinstance(d, dict):
        raise ValueError(f"{name} must be a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(d) - names)
    if unknown:
        raise ValueError(
            f"unknown {name} key(s): {', '.join(unknown)}; "
            f"expected some of: {', '.join(sorted(names))}"
        )


def to_plain(value: Any) -> Any:
    """Tuples and lists to lists, dicts deep-copied: JSON-ready values."""
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return copy.copy(value)


def from_plain(value: Any, hint: Any) -> Any:
    """A JSON value back to what the field annotation ``hint`` wants (lists -> tuples)."""
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return value


@dataclass(frozen=True)
class StrictConfig:
    """Base of the frozen model configs: a strict, JSON-friendly ``to_dict`` / ``from_dict``.

    Subclasses are ``@dataclass(frozen=True)``; their ``__post_init__`` should call
    ``super().__post_init__()`` and then validate values (raising ``ValueError``).
    """

    def __post_init__(self) -> None:
        # lists become tuples where a field is annotated as one (so equality and hashing of
        # the tuple fields work), and dict fields are private deep copies
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list | dict):
                object.__setattr__(self, f.name, from_plain(value, hints.get(f.name)))

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (tuples become lists, dicts are deep copies)."""
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        """Build a config from ``to_dict`` output (e.g. parsed JSON); missing keys keep defaults.

        Raises:
            ValueError: on a key that is not a field (the message names it) or a non-dict.
        """
        check_keys(cls, d)
        hints = typing.get_type_hints(cls)
        return cls(**{k: from_plain(v, hints.get(k)) for k, v in d.items()})
