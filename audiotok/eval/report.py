"""Evaluate a tokenizer on audio files against Opus at the same bitrates, and write a report.

:func:`evaluate` encodes and decodes every file at every bitrate asked for, puts the same
objective metrics on the tokenizer and on Opus (:mod:`audiotok.eval.opus`), and writes

* ``report.json``: settings, per-file results, failures, means per kind and bitrate,
  code statistics and timing (seconds per minute of audio, per metric);
* ``report.md``: the same as Markdown tables (written by :mod:`audiotok.eval.render`);
* ``spectrograms/*.png`` for the first few files and ``code_usage.png``.

Metrics (from :mod:`audiotok.eval.metrics`), all at the tokenizer's sample rate and channel
count, against the original resampled to it: SI-SDR (arXiv:1811.02508), multi-scale mel
distance, multi-resolution STFT distance; for speech STOI and wide-band PESQ (when
installed); ViSQOL v3 (arXiv:2004.09584; when installed; speech mode at 16 kHz for speech,
audio mode at 48 kHz otherwise); per codebook usage and entropy, nominal and actual bitrate.

Each file's kind is ``speech``, ``music`` or ``audio`` (anything else): the ``kind``
argument if given, else the manifest's ``kind`` field, else a guess from the path (a folder
or file name containing ``speech``/``voice`` or ``music``/``song``), else ``audio``.
Unreadable files and files that fail are listed in the report and skipped.

Over 400 lines on purpose: the evaluation runner (inputs, bitrate plan, per-file scoring
against Opus, aggregation); results live in :mod:`~audiotok.eval.results` and writing in
:mod:`~audiotok.eval.render`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from audiotok.audio_io import AudioFileError, audio_info, convert_channels, read_audio, resample
from audiotok.data.manifest import ManifestEntry, load_entries
from audiotok.errors import UserError
from audiotok.eval import metrics
from audiotok.eval.opus import opus_available, opus_encode_decode
from audiotok.eval.render import write_figures, write_report
from audiotok.eval.results import METRICS, EvalReport

__all__ = ["EvalReport", "METRICS", "evaluate", "aggregate", "collect_inputs", "plan_bitrates"]

Kind = Literal["speech", "music", "audio"]
KINDS: tuple[str, ...] = ("speech", "music", "audio")
#: The extra Opus bitrate always evaluated: the usual "good speech" bar.
OPUS_BAR_KBPS = 12.0
_SPEECH_WORDS = ("speech", "voice", "spoken", "speaker")
_MUSIC_WORDS = ("music", "song")


class _Timer:
    """Seconds spent per stage and the audio seconds each stage processed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.audio: dict[str, float] = {}

    @staticmethod
    def _cpu() -> float:
        t = os.times()  # this process and its finished children (opusenc/opusdec)
        return t.user + t.system + t.children_user + t.children_system

    def run(self, name: str, audio_seconds: float, fn: Callable[[], Any]) -> Any:
        start, cpu = time.perf_counter(), self._cpu()
        try:
            return fn()
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.cpu[name] = self.cpu.get(name, 0.0) + self._cpu() - cpu
            self.audio[name] = self.audio.get(name, 0.0) + audio_seconds

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: wall and CPU seconds (all threads and subprocesses), and per audio minute."""
        out = {}
        for k, s in self.seconds.items():
            minutes = max(self.audio[k] / 60.0, 1e-9)
            out[k] = {
                "seconds": s,
                "cpu_seconds": self.cpu[k],
                "audio_minutes": self.audio[k] / 60.0,
                "seconds_per_minute": s / minutes,
                "cpu_seconds_per_minute": self.cpu[k] / minutes,
            }
        return out


def guess_kind(entry: ManifestEntry) -> Kind:
    """``speech``/``music`` from the manifest's ``kind`` or the path's words, else ``audio``."""
    kind = str(entry.extra.get("kind", "")).lower()
    if kind in KINDS:
        return kind  # type: ignore[return-value]
    words = [p.lower() for p in Path(entry.path).parts]
    if any(w in p for p in words for w in _SPEECH_WORDS):
        return "speech"
    if any(w in p for p in words for w in _MUSIC_WORDS):
        return "music"
    return "audio"


def collect_inputs(
    sources: Sequence[str | os.PathLike],
) -> tuple[list[ManifestEntry], list[dict[str, str]]]:
    """Expand files, folders (recursive) and JSONL manifests into entries.

    Returns:
        ``(entries, failed)``: inputs that do not exist or do not parse go to ``failed``.
    """
    entries: list[ManifestEntry] = []
    failed: list[dict[str, str]] = []
    for src in sources:
        try:
            entries.extend(load_entries(src))
        except UserError as e:
            failed.append({"path": str(src), "error": str(e)})
    return entries, failed


def plan_bitrates(tokenizer: Any, bitrates_kbps: Sequence[float] | None) -> list[tuple[int, float]]:
    """``(num_codebooks, kbps)`` pairs to evaluate, lowest bitrate first.

    Args:
        tokenizer: has ``bitrates`` (kbps per usable codebook count, ascending) and
            ``num_codebooks``.
        bitrates_kbps: wanted bitrates; each takes the most codebooks that fit. None: all.

    Raises:
        UserError: a bitrate below the lowest the tokenizer offers.
    """
    offered = [float(b) for b in tokenizer.bitrates]
    if len(offered) == 1:  # all codebooks or nothing
        pairs = {int(tokenizer.num_codebooks): offered[0]}
        if bitrates_kbps and min(bitrates_kbps) < offered[0] * (1 - 1e-9):
            raise UserError(f"this tokenizer only offers {offered[0]:g} kbps")
        return list(pairs.items())
    if not bitrates_kbps:
        return list(enumerate(offered, 1))
    pairs = {}
    for want in bitrates_kbps:
        fits = [k for k, b in enumerate(offered, 1) if b <= want * (1 + 1e-9)]
        if not fits:
            avail = ", ".join(f"{b:g}" for b in offered)
            raise UserError(f"bitrate {want:g} kbps is not available (offered: {avail} kbps)")
        pairs[fits[-1]] = offered[fits[-1] - 1]
    return sorted(pairs.items())


def _model_info(tokenizer: Any, plan: list[tuple[int, float]]) -> dict[str, Any]:
    info = {
        "family": getattr(tokenizer, "family", type(tokenizer).__name__),
        "model_id": getattr(tokenizer, "model_id", None),
        "sample_rate": int(tokenizer.sample_rate),
        "channels": int(tokenizer.channels),
        "frame_rate": float(tokenizer.frame_rate),
        "num_codebooks": int(tokenizer.num_codebooks),
        "codebook_size": int(tokenizer.codebook_size),
        "bitrates_kbps": [float(b) for b in tokenizer.bitrates],
        "evaluated_kbps": [b for _, b in plan],
    }
    if getattr(tokenizer, "weights_id", None):  # a decoder fine-tune of model_id's codes
        info["weights_id"] = tokenizer.weights_id
    return info


def _load(entry: ManifestEntry, tokenizer: Any, max_seconds: float | None) -> np.ndarray:
    """The file's first ``max_seconds`` at the tokenizer's rate and channels: ``(C, T)``."""
    sr, _, _ = audio_info(entry.path)
    frames = -1 if max_seconds is None else max(1, int(round(max_seconds * sr)))
    wav, sr = read_audio(entry.path, frames=frames)
    wav = resample(convert_channels(wav, int(tokenizer.channels)), sr, int(tokenizer.sample_rate))
    if wav.shape[-1] < 1:
        raise UserError(f"audio file has no samples after resampling: {entry.path}")
    return np.ascontiguousarray(wav, dtype=np.float32)


class _Scorer:
    """The signal metrics of one (reference, estimate) pair, timed per metric."""

    def __init__(self, sample_rate: int, visqol: bool, timer: _Timer) -> None:
        self.sample_rate = sample_rate
        self.timer = timer
        self.visqol = visqol and metrics.metric_unavailable_reason("visqol") is None
        self.has_stoi = metrics.metric_unavailable_reason("stoi") is None
        self.has_pesq = metrics.metric_unavailable_reason("pesq") is None
        self._visqol: dict[str, Any] = {}

    def _visqol_score(self, ref: np.ndarray, est: np.ndarray, kind: str) -> float | None:
        from audiotok.eval.visqol import MIN_SECONDS, ViSQOL

        if ref.shape[-1] < MIN_SECONDS * self.sample_rate:
            return None
        mode = "speech" if kind == "speech" else "audio"
        if mode not in self._visqol:
            self._visqol[mode] = ViSQOL(mode)
        return self._visqol[mode](ref, est, self.sample_rate)

    def __call__(self, ref: np.ndarray, est: np.ndarray, kind: str) -> dict[str, float | None]:
        sr, secs, t = self.sample_rate, ref.shape[-1] / self.sample_rate, self.timer
        out: dict[str, float | None] = dict.fromkeys(METRICS)
        out["si_sdr"] = float(t.run("si_sdr", secs, lambda: metrics.si_sdr(ref, est)))
        out["mel_distance"] = float(
            t.run("mel_distance", secs, lambda: metrics.mel_distance(ref, est, sr))
        )
        out["stft_distance"] = float(
            t.run("stft_distance", secs, lambda: metrics.stft_distance(ref, est))
        )
        if kind == "speech" and self.has_stoi:
            out["stoi"] = _float(t.run("stoi", secs, lambda: metrics.stoi(ref, est, sr)))
        if kind == "speech" and self.has_pesq:
            out["pesq"] = _float(t.run("pesq", secs, lambda: metrics.pesq(ref, est, sr)))
        if self.visqol:
            name = "visqol_speech" if kind == "speech" else "visqol_audio"
            out["visqol"] = t.run(name, secs, lambda: self._visqol_score(ref, est, kind))
        return out


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _opus_rates(plan: list[tuple[int, float]], channels: int) -> list[float]:
    lowest = 6.0 * channels  # Opus' floor; lower tokenizer rates are compared with it
    return sorted({max(kbps, lowest) for _, kbps in plan} | {OPUS_BAR_KBPS * channels})


def _prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: output exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: report folder is not empty (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def evaluate(
    tokenizer: Any,
    files: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    bitrates: Sequence[float] | None = None,
    kind: Kind | None = None,
    max_seconds: float | None = None,
    opus: bool = True,
    visqol: bool = True,
    overwrite: bool = False,
    num_figures: int = 3,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Evaluate a tokenizer (and Opus at the same bitrates) on audio files; write a report.

    Args:
        tokenizer: an :class:`~audiotok.tokenizer.AudioTokenizer` (or anything with its
            ``encode(wav, sample_rate, num_codebooks=)``, ``decode(codes, length=)``,
            rates and ``bitrates``), or a name/folder for :func:`audiotok.hub.load`.
        files: audio files, folders (searched recursively) and/or JSONL manifests.
        out_dir: report folder (created; must be empty unless ``overwrite``).
        bitrates: kbit/s to evaluate (each takes the most codebooks that fit); None: every
            bitrate the tokenizer offers.
        kind: ``"speech"``, ``"music"`` or ``"audio"`` for every file; None: per file from
            the manifest or the path (see module docstring).
        max_seconds: evaluate only each file's first ``max_seconds`` (None: whole files).
        opus: also evaluate Opus at the same bitrates and at 12 kbit/s (skipped, with a
            note in ``settings``, when no Opus encoder is installed).
        visqol: compute ViSQOL when ``visqol-python`` is installed.
        overwrite: write into a non-empty ``out_dir``.
        num_figures: files that get a spectrogram comparison PNG.
        progress: called with each file's path before it is evaluated.

    Returns:
        The :class:`EvalReport` (also written to ``out_dir``).

    Raises:
        UserError: bad model, bitrate or output folder, or no file could be evaluated.
    """
    if isinstance(tokenizer, (str, os.PathLike)):
        from audiotok.hub import load

        tokenizer = load(tokenizer)
    if kind is not None and kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise UserError(f"max_seconds must be positive, got {max_seconds}")
    plan = plan_bitrates(tokenizer, bitrates)
    out = _prepare_out_dir(out_dir, overwrite)
    sources = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    entries: list[ManifestEntry] = []
    shown_paths: list[str] = []
    failed: list[dict[str, str]] = []
    for src in sources:
        found, bad = collect_inputs([src])
        entries += found
        shown_paths += [_shown_path(e.path, src) for e in found]
        failed += bad
    sr, channels = int(tokenizer.sample_rate), int(tokenizer.channels)
    use_opus = opus and opus_available()
    timer = _Timer()
    scorer = _Scorer(sr, visqol, timer)
    settings = {
        "inputs": [str(s) for s in sources],
        "kind": kind,
        "max_seconds": max_seconds,
        "opus": use_opus,
        "opus_kbps": _opus_rates(plan, channels) if use_opus else [],
        "opus_note": None if use_opus or not opus else "no Opus encoder installed",
        "visqol": scorer.visqol,
        "visqol_note": None
        if scorer.visqol or not visqol
        else metrics.metric_unavailable_reason("visqol"),
        "stoi": scorer.has_stoi,
        "pesq": scorer.has_pesq,
    }
    report = EvalReport(out, _model_info(tokenizer, plan), settings, failed=failed)
    codes_by_k: dict[int, list[torch.Tensor]] = {k: [] for k, _ in plan}
    figures: list[tuple[str, str, np.ndarray, dict[str, np.ndarray]]] = []
    for entry, shown in zip(entries, shown_paths, strict=True):
        if progress is not None:
            progress(shown)
        try:
            rows, decoded = _evaluate_file(
                entry, tokenizer, plan, kind or guess_kind(entry), max_seconds, scorer, timer,
                settings["opus_kbps"], codes_by_k, shown,
            )  # fmt: skip
        except (UserError, ValueError, RuntimeError, OSError) as e:
            report.failed.append({"path": shown, "error": _one_line(e)})
            continue
        report.files.append(rows[0]["_file"])
        report.results.extend({k: v for k, v in r.items() if k != "_file"} for r in rows)
        if len(figures) < num_figures:
            figures.append((shown, rows[0]["kind"], *decoded))
    if not report.files:
        reasons = "; ".join(f"{f['path']}: {f['error']}" for f in report.failed[:3])
        raise UserError(f"no audio could be evaluated ({reasons or 'no files found'})")
    report.aggregates = aggregate(report.results)
    report.code_usage = _code_usage(codes_by_k, dict(plan), tokenizer)
    report.timing = timer.summary()
    write_figures(report, figures, codes_by_k)
    write_report(report)
    return report


def _shown_path(path: str, source: str | os.PathLike) -> str:
    """How the report names a file: relative to the manifest's folder or the input folder
    it came from (a report stays readable on another machine and names no home folder);
    a file given directly, as given."""
    src = Path(source)
    root = src if src.is_dir() else src.parent if src.suffix == ".jsonl" else None
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _one_line(e: BaseException) -> str:
    if isinstance(e, AudioFileError):  # the report names the file beside the problem
        return e.problem
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, UserError):
        return text or "unreadable file"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _evaluate_file(
    entry: ManifestEntry,
    tokenizer: Any,
    plan: list[tuple[int, float]],
    kind: str,
    max_seconds: float | None,
    scorer: _Scorer,
    timer: _Timer,
    opus_kbps: list[float],
    codes_by_k: dict[int, list[torch.Tensor]],
    shown: str,
) -> tuple[list[dict[str, Any]], tuple[np.ndarray, dict[str, np.ndarray]]]:
    """All rows of one file (named ``shown`` in the report), and the (reference,
    {label: decoded}) audio for its figure."""
    ref = _load(entry, tokenizer, max_seconds)
    sr, length = int(tokenizer.sample_rate), ref.shape[-1]
    secs = length / sr
    info = {"path": shown, "kind": kind, "seconds": secs, "sample_rate": sr}
    info["channels"] = int(ref.shape[0])
    rows: list[dict[str, Any]] = []
    decoded: dict[str, np.ndarray] = {}
    bits_per_code = math.log2(int(tokenizer.codebook_size))
    for k, kbps in plan:
        with torch.inference_mode():
            codes = timer.run(
                "encode", secs, lambda k=k: tokenizer.encode(ref, sr, num_codebooks=k)
            )
            wav = timer.run("decode", secs, lambda c=codes: tokenizer.decode(c, length=length))
        est = np.ascontiguousarray(torch.as_tensor(wav)[0].float().numpy())
        if est.shape != ref.shape:
            raise RuntimeError(f"decoded shape {est.shape} != input shape {ref.shape}")
        codes = torch.as_tensor(codes).long()  # (1, k, T')
        codes_by_k[k].append(codes[0])
        size = int(tokenizer.codebook_size)
        entropy = metrics.codebook_entropy_bits(codes, size)
        row = _row(info, "tokenizer", kbps, codes.shape[-1] * k * bits_per_code / secs / 1000.0)
        row.update(num_codebooks=k, **scorer(ref, est, kind))
        row["codebook_usage"] = metrics.codebook_usage(codes, size).tolist()
        row["codebook_entropy_bits"] = entropy.tolist()
        row["entropy_kbps"] = float(entropy.sum()) * float(tokenizer.frame_rate) / 1000.0
        rows.append(row)
        decoded[f"tokenizer {kbps:g} kbps"] = est
    for kbps in opus_kbps:
        res = timer.run("opus", secs, lambda b=kbps: opus_encode_decode(ref, sr, b))
        row = _row(info, "opus", res.bitrate_kbps, res.actual_kbps)
        row.update(scorer(ref, res.audio, kind))
        rows.append(row)
        decoded[f"opus {res.bitrate_kbps:g} kbps"] = res.audio
    rows[0]["_file"] = info
    return rows, (ref, decoded)


def _row(info: dict[str, Any], system: str, kbps: float, actual: float) -> dict[str, Any]:
    return {
        "path": info["path"],
        "kind": info["kind"],
        "system": system,
        "bitrate_kbps": float(kbps),
        "actual_kbps": float(actual),
    }


def aggregate(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean of each metric per (kind, system, bitrate); missing/NaN values are left out.

    Returns:
        Rows ``{"kind", "system", "bitrate_kbps", "files", "actual_kbps", <metric>: mean or
        None}`` sorted by kind, system (tokenizer first) and bitrate.
    """
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["kind"], r["system"], r["bitrate_kbps"]), []).append(r)
    order = {"tokenizer": 0, "opus": 1}
    out = []
    for (kind, system, kbps), rows in sorted(
        groups.items(), key=lambda g: (KINDS.index(g[0][0]), order.get(g[0][1], 2), g[0][2])
    ):
        agg: dict[str, Any] = {"kind": kind, "system": system, "bitrate_kbps": kbps}
        agg["files"] = len(rows)
        for name in ("actual_kbps", *METRICS):
            vals = [float(r[name]) for r in rows if r.get(name) is not None]
            vals = [v for v in vals if math.isfinite(v)]
            agg[name] = float(np.mean(vals)) if vals else None
        out.append(agg)
    return out


def _code_usage(
    codes_by_k: dict[int, list[torch.Tensor]], kbps: dict[int, float], tokenizer: Any
) -> list[dict[str, Any]]:
    size, rows = int(tokenizer.codebook_size), []
    for k, items in codes_by_k.items():
        if not items:
            continue
        codes = torch.cat(items, dim=-1)  # (k, all frames)
        entropy = metrics.codebook_entropy_bits(codes, size)
        rows.append(
            {
                "bitrate_kbps": kbps[k],
                "num_codebooks": k,
                "frames": int(codes.shape[-1]),
                "usage": metrics.codebook_usage(codes, size).tolist(),
                "entropy_bits": entropy.tolist(),
                "entropy_kbps": float(entropy.sum()) * float(tokenizer.frame_rate) / 1000.0,
            }
        )
    return rows
