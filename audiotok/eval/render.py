"""Writing an evaluation report: ``report.json``, ``report.md`` tables and PNG figures.

Kept apart from :mod:`audiotok.eval.report` (which measures) so that the measuring code
reads top to bottom and the layout of the written report can change on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiotok.atomic import write_text_atomic
from audiotok.eval.plots import plot_code_usage, plot_spectrograms
from audiotok.eval.results import EvalReport

#: (key, column title, format) of the metric columns, in table order.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("si_sdr", "SI-SDR dB ↑", "{:.2f}"),
    ("mel_distance", "mel ↓", "{:.3f}"),
    ("stft_distance", "STFT ↓", "{:.3f}"),
    ("stoi", "STOI ↑", "{:.3f}"),
    ("pesq", "PESQ ↑", "{:.2f}"),
    ("visqol", "ViSQOL ↑", "{:.2f}"),
)


def fmt(value: Any, spec: str = "{:.3g}") -> str:
    """A table cell: ``-`` for missing values."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return spec.format(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def _used_columns(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]


def _slug(path: str, index: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:60] or "file"
    return f"{index:02d}_{stem}.png"


def write_figures(
    report: EvalReport,
    figures: Sequence[tuple[str, str, np.ndarray, dict[str, np.ndarray]]],
    codes_by_k: dict[int, list[torch.Tensor]],
) -> None:
    """Spectrogram PNGs (original vs tokenizer vs Opus) and ``code_usage.png``.

    Args:
        report: filled in with the figure paths (relative to ``report.out_dir``).
        figures: ``(path, kind, reference (C, T), {label: decoded (C, T)})`` per file.
        codes_by_k: tokenizer codes ``(k, T')`` per file, keyed by codebook count.
    """
    sr = int(report.model["sample_rate"])
    for i, (path, kind, ref, decoded) in enumerate(figures):
        tok = [(lab, w) for lab, w in decoded.items() if lab.startswith("tokenizer")]
        opus = [(lab, w) for lab, w in decoded.items() if lab.startswith("opus")]
        if len(tok) > 3:  # lowest, middle and highest bitrate keep the figure readable
            tok = [tok[0], tok[len(tok) // 2], tok[-1]]
        top = float(report.model["evaluated_kbps"][-1])
        if opus:  # Opus at the bitrate nearest the tokenizer's highest
            opus = [min(opus, key=lambda lw: abs(float(lw[0].split()[1]) - top))]
        panels = [("original", ref), *tok, *opus]
        rel = f"spectrograms/{_slug(path, i)}"
        plot_spectrograms(panels, sr, report.out_dir / rel, title=f"{Path(path).name} ({kind})")
        report.figures.append(rel)
    k = max((k for k, items in codes_by_k.items() if items), default=None)
    if k is not None:
        size = int(report.model["codebook_size"])
        codes = torch.cat(codes_by_k[k], dim=-1).numpy()  # (k, frames)
        counts = np.stack([np.bincount(row, minlength=size) for row in codes])  # (k, size)
        usage = next(u for u in report.code_usage if u["num_codebooks"] == k)
        plot_code_usage(counts, report.out_dir / "code_usage.png", usage["entropy_bits"])
        report.figures.append("code_usage.png")


def render_markdown(report: EvalReport) -> str:
    """The Markdown text of ``report.md``."""
    m, s = report.model, report.settings
    minutes = sum(f["seconds"] for f in report.files) / 60.0
    lines = [
        "# audiotok evaluation",
        "",
        f"Model: `{m['family']}` id `{m.get('weights_id') or m['model_id']}`"
        + (f" (codes of `{m['model_id']}`)" if m.get("weights_id") else "")
        + f", {m['sample_rate']} Hz, "
        f"{m['channels']} channel(s), {m['frame_rate']:g} frames/s, "
        f"{m['num_codebooks']} x {m['codebook_size']} codes "
        f"({', '.join(f'{b:g}' for b in m['bitrates_kbps'])} kbps).",
        "",
        f"Files: {len(report.files)} evaluated ({minutes:.2f} min of audio), "
        f"{len(report.failed)} failed. Max seconds per file: {s['max_seconds'] or 'all'}.",
        f"Opus: {'yes' if s['opus'] else s['opus_note'] or 'off'}; "
        f"ViSQOL: {'yes' if s['visqol'] else s['visqol_note'] or 'off'}; "
        f"STOI/PESQ (speech only): {'yes' if s['stoi'] else 'no'}/"
        f"{'yes' if s['pesq'] else 'no'}.",
        "",
        "Arrows: higher (↑) or lower (↓) is better. `kbps` is the nominal bitrate; `actual` "
        "counts every code frame (tokenizer) or the Ogg file size (Opus, container included).",
        "",
    ]
    for kind in ("speech", "music", "audio"):
        rows = [a for a in report.aggregates if a["kind"] == kind]
        if not rows:
            continue
        cols = _used_columns(rows)
        header = ["system", "kbps", "actual", *(c[1] for c in cols), "files"]
        body = [
            [a["system"], fmt(a["bitrate_kbps"], "{:.4g}"), fmt(a["actual_kbps"], "{:.2f}")]
            + [fmt(a[key], spec) for key, _, spec in cols]
            + [str(a["files"])]
            for a in rows
        ]
        lines += [f"## {kind.capitalize()}: means over files", "", *_table(header, body)]
    if report.code_usage:
        lines += ["## Codebook usage (tokenizer, all files)", ""]
        header = ["kbps", "K", "used fraction per codebook", "entropy bits per codebook"]
        header.append("entropy-coded kbps")
        body = [
            [
                fmt(u["bitrate_kbps"], "{:.4g}"),
                str(u["num_codebooks"]),
                " ".join(f"{x:.2f}" for x in u["usage"]),
                " ".join(f"{x:.2f}" for x in u["entropy_bits"]),
                fmt(u["entropy_kbps"], "{:.2f}"),
            ]
            for u in report.code_usage
        ]
        lines += _table(header, body)
    if report.figures:
        lines += ["## Figures", ""]
        lines += [f"![{Path(f).stem}]({f})" for f in report.figures] + [""]
    cols = _used_columns(report.results)
    header = ["file", "kind", "system", "kbps", "actual", *(c[1] for c in cols)]
    body = [
        [Path(r["path"]).name, r["kind"], r["system"], fmt(r["bitrate_kbps"], "{:.4g}")]
        + [fmt(r["actual_kbps"], "{:.2f}")]
        + [fmt(r[key], spec) for key, _, spec in cols]
        for r in report.results
    ]
    lines += ["## Per file", "", *_table(header, body)]
    if report.failed:
        lines += ["## Failed files", ""]
        lines += [f"- `{f['path']}`: {f['error']}" for f in report.failed] + [""]
    lines += ["## Timing", "", *_timing_table(report.timing)]
    return "\n".join(lines)


def _timing_table(timing: dict[str, dict[str, float]]) -> list[str]:
    body = [
        [name, f"{t['audio_minutes']:.2f}", f"{t['seconds']:.2f}", f"{t['seconds_per_minute']:.2f}"]
        + [f"{t['cpu_seconds_per_minute']:.2f}"]
        for name, t in sorted(timing.items(), key=lambda kv: -kv[1]["seconds"])
    ]
    header = ["stage", "audio min", "wall s", "wall s per audio min", "CPU s per audio min"]
    return _table(header, body)


def write_report(report: EvalReport) -> None:
    """Write ``report.json`` and ``report.md`` into ``report.out_dir`` (atomically)."""
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    write_text_atomic(report.json_path, text + "\n")
    write_text_atomic(report.markdown_path, render_markdown(report))
