"""Datasets: audio folders, manifests and standard corpus layouts; no model code.

Names are imported lazily so that the light modules (:mod:`audiotok.audio_io`,
:mod:`audiotok.data.manifest`) can be used without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_audio": "audiotok.audio_io",
    "read_audio_bytes": "audiotok.audio_io",
    "write_audio": "audiotok.audio_io",
    "load_audio": "audiotok.audio_io",
    "audio_info": "audiotok.audio_io",
    "resample": "audiotok.audio_io",
    "to_channels": "audiotok.audio_io",
    "normalize_level": "audiotok.audio_io",
    "AUDIO_EXTENSIONS": "audiotok.audio_io",
    "ManifestEntry": "manifest",
    "read_manifest": "manifest",
    "write_manifest": "manifest",
    "build_manifest": "manifest",
    "list_audio_files": "manifest",
    "load_entries": "manifest",
    "split_by_file": "manifest",
    "librispeech_entries": "layouts",
    "vctk_entries": "layouts",
    "folder_entries": "layouts",
    "detect_layout": "layouts",
    "layout_entries": "layouts",
    "AudioDataset": "audio",
    "PreloadedAudioDataset": "audio",
    "SyntheticAudioDataset": "synthetic",
    "synthetic_clip": "synthetic",
    "corpus_dir": "corpus",
    "cache_dir": "corpus",
    "EvalAudioDataset": "validation",
    "pad_collate": "validation",
    "build_audio_dataset": "validation",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = _LAZY[name]
        module = module if "." in module else f"audiotok.data.{module}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'audiotok.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
