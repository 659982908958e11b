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

__all__ = [
    "ConfigError",
    "StrictConfig",
    "check_keys",
    "coerce",
    "type_name",
    "to_plain",
    "from_plain",
]


class ConfigError(ValueError):
    """A config value or key that does not fit its dataclass (one line, naming the key)."""


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


def type_name(hint: Any) -> str:
    """How a type annotation reads in an error message (``an integer``, ``a mapping``...)."""
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])} values"
        return f"a list of {len(args)} numbers"
    if origin in (dict, list):
        return "a mapping" if origin is dict else "a list"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        hint, str(getattr(hint, "__name__", hint))
    )


def coerce(value: Any, hint: Any, key: str, source: str | None = None) -> Any:
    """Check ``value`` against the annotation ``hint`` and return it as the field wants it.

    Ints are accepted where floats are expected (and, for YAML 1.1, a string such as
    ``"3e-4"``); bools are never numbers; lists become tuples for tuple fields (fixed or
    variadic length); dicts are deep-copied. Annotations other than these (``Any``, a
    class of the project's own) pass the value through for the dataclass to validate.

    Raises:
        ConfigError: ``'<key>'[ in <source>] must be <type>, got <value>``.
    """
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            if isinstance(value, dict) and typing.get_origin(arg) is dict:
                return coerce(value, arg, key, source)  # its own error names the bad value
            try:
                return coerce(value, arg, key, source)
            except ConfigError:
                continue
    elif origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0], key, source) for v in value)
            if len(value) == len(args):
                return tuple(coerce(v, a, key, source) for v, a in zip(value, args, strict=True))
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            args = typing.get_args(hint)
            if len(args) == 2 and args[1] is not Any:  # dict[str, float]: check each value
                return {k: coerce(v, args[1], f"{key}.{k}", source) for k, v in value.items()}
            return copy.deepcopy(value)
    elif origin is list:
        if isinstance(value, list | tuple):
            (arg,) = typing.get_args(hint) or (Any,)
            return [coerce(v, arg, key, source) for v in value]
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a class of its own: its dataclass validates it
    where = f"'{key}' in {source}" if source else f"'{key}'"
    raise ConfigError(f"{where} must be {type_name(hint)}, got {value!r}")


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
            ValueError: on a key that is not a field (the message names it), a value of the
                wrong type (:class:`ConfigError`, naming the key) or a non-dict.
        """
        check_keys(cls, d)
        hints = typing.get_type_hints(cls)
        return cls(
            **{
                k: coerce(from_plain(v, hints.get(k)), hints.get(k, Any), f"{cls.__name__}.{k}")
                for k, v in d.items()
            }
        )
