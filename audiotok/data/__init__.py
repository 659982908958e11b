"""Datasets: audio folders, manifests and standard corpus layouts; no model code.

Names are imported lazily so that the light modules (:mod:`audiotok.data.io`,
:mod:`audiotok.data.manifest`) can be used without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_audio": "io",
    "read_audio_bytes": "io",
    "write_audio": "io",
    "load_audio": "io",
    "audio_info": "io",
    "resample": "io",
    "to_channels": "io",
    "normalize_level": "io",
    "AUDIO_EXTENSIONS": "io",
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
        return getattr(importlib.import_module(f"audiotok.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'audiotok.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
