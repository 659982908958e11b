"""audiotok: turn audio into discrete tokens and back.

The public API is kept small and is imported lazily, so ``import audiotok`` is cheap and has
no side effects (no torch import, no file access, no network)::

    import audiotok
    tok = audiotok.load("default")          # the bundled 24 kHz tokenizer ("fmnist": images)
    codes = tok.encode(wav, sample_rate)    # (B, K, T') integer codes
    wav = tok.decode(codes)                 # (B, C, T) float at tok.sample_rate
    result = audiotok.encode_files(["music/"], tok, out="tokens/")  # what `audiotok encode` does
    result.failed                           # the files that could not be encoded, and why
    prior = audiotok.load_prior("default")  # the bundled prior over the default's codes
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load",
    "save_pretrained",
    "load_pretrained",
    "load_prior",
    "Tokenizer",
    "AudioTokenizer",
    "ImageTokenizer",
    "encode_files",
    "decode_files",
    "BatchResult",
]

_LAZY = {
    "load": ("audiotok.hub", "load"),
    "save_pretrained": ("audiotok.hub", "save_pretrained"),
    "load_pretrained": ("audiotok.hub", "load_pretrained"),
    "load_prior": ("audiotok.hub", "load_prior"),
    "Tokenizer": ("audiotok.tokenizer", "Tokenizer"),
    "AudioTokenizer": ("audiotok.tokenizer", "AudioTokenizer"),
    "ImageTokenizer": ("audiotok.tokenizer", "ImageTokenizer"),
    "encode_files": ("audiotok.batch", "encode_files"),
    "decode_files": ("audiotok.batch", "decode_files"),
    "BatchResult": ("audiotok.batch", "BatchResult"),
}

if TYPE_CHECKING:  # pragma: no cover
    from audiotok.batch import BatchResult, decode_files, encode_files
    from audiotok.hub import load, load_pretrained, load_prior, save_pretrained
    from audiotok.tokenizer import AudioTokenizer, ImageTokenizer, Tokenizer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'audiotok' has no attribute {name!r}")
