"""audiotok: turn audio into discrete tokens and back.

The public API is kept small and is imported lazily, so ``import audiotok`` is cheap and has
no side effects (no torch import, no file access, no network)::

    import audiotok
    tok = audiotok.load("default")          # the bundled 24 kHz tokenizer
    codes = tok.encode(wav, sample_rate)    # (B, K, T') integer codes
    wav = tok.decode(codes)                 # (B, C, T) float at tok.sample_rate
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load",
    "save_pretrained",
    "load_pretrained",
    "Tokenizer",
    "AudioTokenizer",
]

_LAZY = {
    "load": ("audiotok.hub", "load"),
    "save_pretrained": ("audiotok.hub", "save_pretrained"),
    "load_pretrained": ("audiotok.hub", "load_pretrained"),
    "Tokenizer": ("audiotok.tokenizer", "Tokenizer"),
    "AudioTokenizer": ("audiotok.tokenizer", "AudioTokenizer"),
}

if TYPE_CHECKING:  # pragma: no cover
    from audiotok.hub import load, load_pretrained, save_pretrained
    from audiotok.tokenizer import AudioTokenizer, Tokenizer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'audiotok' has no attribute {name!r}")
