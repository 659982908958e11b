"""The result of an evaluation run (:class:`EvalReport`), shared by the runner
(:mod:`audiotok.eval.report`) and the writers (:mod:`audiotok.eval.render`) so that neither
imports the other's internals (the runner imports the writers; the writers only this)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EvalReport", "METRICS"]

#: Scalar metrics per result row; ``None`` where not computed.
METRICS: tuple[str, ...] = ("si_sdr", "mel_distance", "stft_distance", "stoi", "pesq", "visqol")


@dataclass
class EvalReport:
    """What :func:`evaluate` measured (``report.json`` is :meth:`to_dict`).

    Attributes:
        out_dir: folder holding ``report.md``, ``report.json`` and the figures.
        model: tokenizer description (family, id, rates, codebooks, bitrates).
        settings: the arguments of the run.
        files: evaluated files: ``path``, ``kind``, ``seconds``, ``sample_rate``, ``channels``.
        results: one row per file, system (``"tokenizer"`` or ``"opus"``) and bitrate.
        failed: ``{"path", "error"}`` for every file that could not be evaluated.
        aggregates: means of :data:`METRICS` per kind, system and bitrate, with ``files``.
        code_usage: per tokenizer bitrate, over all files: ``usage`` and ``entropy_bits``
            per codebook and ``entropy_kbps`` (what an ideal entropy coder would need).
        timing: per stage/metric: ``seconds`` and ``seconds_per_minute`` of audio.
        figures: PNG paths relative to ``out_dir``.
    """

    out_dir: Path
    model: dict[str, Any]
    settings: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    code_usage: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, dict[str, float]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    @property
    def markdown_path(self) -> Path:
        """``out_dir / "report.md"``."""
        return self.out_dir / "report.md"

    @property
    def json_path(self) -> Path:
        """``out_dir / "report.json"``."""
        return self.out_dir / "report.json"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        keys = ("model", "settings", "files", "results", "failed", "aggregates", "code_usage")
        d = {k: getattr(self, k) for k in keys}
        d.update(timing=self.timing, figures=self.figures)
        return _clean(d)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
