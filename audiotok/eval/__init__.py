"""Evaluation metrics (SI-SDR, mel and STFT distances, STOI/PESQ, code usage) and reports.

Metric functions live in :mod:`audiotok.eval.metrics` and are re-exported here lazily (no
torch import until one is used). ViSQOL and the Opus baseline are in
:mod:`audiotok.eval.visqol` and :mod:`audiotok.eval.opus`.
"""

from __future__ import annotations

import importlib
from typing import Any

_METRICS = (
    "si_sdr",
    "mel_distance",
    "stft_distance",
    "stoi",
    "pesq",
    "visqol",
    "codebook_usage",
    "codebook_entropy_bits",
    "bitrate",
    "metric_unavailable_reason",
)

__all__ = list(_METRICS)


def __getattr__(name: str) -> Any:
    if name in _METRICS:
        return getattr(importlib.import_module("audiotok.eval.metrics"), name)
    raise AttributeError(f"module 'audiotok.eval' has no attribute {name!r}")
