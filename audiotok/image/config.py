"""Strict frozen configs for the image families: :class:`ImageConfig`.

A copy of the generic part of ``audiotok.audio.base.CodecConfig`` (``image/`` never imports
``audio/``): frozen dataclasses with a JSON-friendly :meth:`ImageConfig.to_dict` and a strict
:meth:`ImageConfig.from_dict` that names unknown keys, plus small validators the image configs
share. Meant to be hoisted into one shared module with its audio twin.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["ImageConfig", "check_int", "check_spec"]

_C = TypeVar("_C", bound="ImageConfig")


@dataclass(frozen=True)
class ImageConfig:
    """Base of the frozen image model configs: a strict, JSON-friendly ``to_dict``/``from_dict``.

    Subclasses are ``@dataclass(frozen=True)`` with plain fields (ints, floats, strings, bools,
    tuples of those, and dicts such as a quantizer spec).
    """

    def __post_init__(self) -> None:
        # lists become tuples where a field is annotated as one (equality and hashing of the
        # tuple fields work), and dict fields become private deep copies
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list | dict):
                object.__setattr__(self, f.name, _from_plain(value, hints.get(f.name)))

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain Python values (tuples become lists, dicts are deep copies)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        """Build a config from ``to_dict`` output (e.g. parsed JSON); missing keys keep defaults.

        Raises:
            ValueError: on a key that is not a field (the message names it) or a non-dict.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}; "
                f"expected some of: {', '.join(sorted(names))}"
            )
        hints = typing.get_type_hints(cls)
        return cls(**{k: _from_plain(v, hints.get(k)) for k, v in d.items()})


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return copy.copy(value)


def _from_plain(value: Any, hint: Any) -> Any:
    # JSON has no tuples: turn lists back into tuples where the field is annotated as one
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


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` (or each item of a tuple) is an int >= ``minimum``."""
    for x in value if isinstance(value, tuple) else (value,):
        if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
            raise ValueError(f"{name} must be integer(s) >= {minimum}, got {value!r}")


def check_spec(name: str, spec: Any) -> None:
    """Raise ``ValueError`` unless ``spec`` looks like a quantizer spec dict (has a ``type``)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{name} must be a quantizer spec dict with a 'type', got {spec!r}")
