"""The base of the image model configs and the validators they share.

:class:`ImageConfig` is :class:`audiotok.config.StrictConfig` (frozen dataclass, JSON-friendly
``to_dict``, strict ``from_dict`` that names unknown keys) under an image name, so that
``isinstance(cfg, ImageConfig)`` tells the image families' configs apart; the helpers below
keep every ``__post_init__`` short and its messages uniform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audiotok.config import StrictConfig

__all__ = ["ImageConfig", "check_int", "check_spec"]


@dataclass(frozen=True)
class ImageConfig(StrictConfig):
    """Base of the frozen image model configs (see :class:`audiotok.config.StrictConfig`)."""


def check_int(name: str, value: Any, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` (or each item of a tuple) is an int >= ``minimum``."""
    for x in value if isinstance(value, tuple) else (value,):
        if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
            raise ValueError(f"{name} must be integer(s) >= {minimum}, got {value!r}")


def check_spec(name: str, spec: Any) -> None:
    """Raise ``ValueError`` unless ``spec`` looks like a quantizer spec dict (has a ``type``)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{name} must be a quantizer spec dict with a 'type', got {spec!r}")
