"""Periodic validation during training: dev-set metrics, decoded samples, spectrogram PNGs.

Runs on the main rank only, in eval mode, without gradients. Metrics are the task's own
(mel and STFT distances, mel at fewer codebooks) averaged over ``num_batches`` dev batches,
plus SI-SDR (arXiv:1811.02508) and the standard mel distance from
:mod:`audiotok.eval.metrics` where that module exists.
The first ``num_audio_samples`` clips are written to ``out_dir`` as ``<i>_ref.wav``,
``<i>_rec.wav`` and ``<i>_spec.png`` (reference above reconstruction; matplotlib is imported
only here, through :mod:`audiotok.eval.plots`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from audiotok.training.ddp import unwrap
from audiotok.training.tasks import Task

__all__ = ["run_validation"]


def _eval_metrics() -> Any:
    try:
        return importlib.import_module("audiotok.eval.metrics")
    except ImportError:
        return None


def _standard_metrics(module: Any, ref: torch.Tensor, est: torch.Tensor, sr: int) -> dict:
    """SI-SDR and mel distance of :mod:`audiotok.eval.metrics` (empty without the module)."""
    if module is None:
        return {}
    ref, est = ref.float().cpu(), est.float().cpu()
    out = {}
    if hasattr(module, "si_sdr"):
        out["si_sdr"] = float(module.si_sdr(ref, est).mean())
    if hasattr(module, "mel_distance"):
        out["mel_distance"] = float(module.mel_distance(ref, est, sr).mean())
    return out


def write_samples(
    out_dir: Path, refs: torch.Tensor, recs: torch.Tensor, sample_rate: int
) -> list[Path]:
    """Write reference/reconstruction WAVs and a spectrogram comparison PNG per clip.

    Args:
        out_dir: destination folder (created).
        refs: ``(N, C, T)`` reference audio.
        recs: ``(N, C, T)`` reconstructions.
        sample_rate: Hz.

    Returns:
        The files written.
    """
    from audiotok.data.io import write_audio
    from audiotok.eval.plots import plot_spectrograms

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (ref, rec) in enumerate(zip(refs, recs, strict=True)):
        r, e = ref.float().cpu().numpy(), rec.float().cpu().numpy()
        written.append(write_audio(out_dir / f"{i}_ref.wav", r, sample_rate))
        written.append(write_audio(out_dir / f"{i}_rec.wav", e, sample_rate))
        written.append(
            plot_spectrograms(
                [("reference", r), ("reconstruction", e)],
                sample_rate,
                out_dir / f"{i}_spec.png",
                title=out_dir.name,
            )
        )
    return written


@torch.no_grad()
def run_validation(
    task: Task,
    dataset: Dataset,
    *,
    batch_size: int,
    num_batches: int,
    num_audio_samples: int,
    out_dir: Path,
    device: torch.device,
) -> dict[str, float]:
    """Average the task's validation metrics over the first ``num_batches`` dev batches.

    Args:
        task: provides ``generator`` and ``validation_step(batch) -> (metrics, recon)``.
        dataset: deterministic dev items ``(C, T)`` of equal length.
        batch_size: dev batch size.
        num_batches: batches to evaluate (fewer if the dev set is smaller).
        num_audio_samples: clips of the first batch written to ``out_dir``.
        out_dir: ``run_dir/samples/step_N``.
        device: where to run.

    Returns:
        Metric name -> mean value (``si_sdr`` included when available).
    """
    generator = task.generator
    was_training = generator.training
    generator.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    metrics_module = _eval_metrics()
    sample_rate = int(
        getattr(dataset, "sample_rate", 0) or getattr(unwrap(task.generator), "sample_rate", 16000)
    )
    sums: dict[str, float] = {}
    count = 0
    try:
        for i, batch in enumerate(loader):
            if i >= num_batches:
                break
            batch = batch.to(device)
            metrics, recon = task.validation_step(batch)
            metrics.update(_standard_metrics(metrics_module, batch, recon, sample_rate))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if i == 0 and num_audio_samples > 0:
                n = min(num_audio_samples, batch.shape[0])
                write_samples(out_dir, batch[:n], recon[:n], sample_rate)
    finally:
        generator.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}
