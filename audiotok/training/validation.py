"""Periodic validation during training: dev-set metrics and a few written samples.

Runs on the main rank only, in eval mode, without gradients. Metrics are the task's own
(for codecs: mel and STFT distances, mel at fewer codebooks, the latent's effective
dimension, SI-SDR arXiv:1811.02508 and the standard mel distance of
:mod:`audiotok.eval.metrics`) averaged over ``num_batches`` dev batches. The first
``num_audio_samples`` items are handed to the task builder's sample writer (for audio:
``<i>_ref.wav``, ``<i>_rec.wav`` and ``<i>_spec.png``, reference above reconstruction;
matplotlib is imported only there, through :mod:`audiotok.eval.plots`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from audiotok.training.tasks import Task

__all__ = ["run_validation"]


def write_audio_samples(
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
    from audiotok.audio_io import write_audio
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
    write_samples: Callable[[Path, Any, Any], list[Path]] | None = None,
) -> dict[str, float]:
    """Average the task's validation metrics over the first ``num_batches`` dev batches.

    Args:
        task: provides ``generator`` and ``validation_step(batch) -> (metrics, recon)``.
        dataset: deterministic dev items.
        batch_size: dev batch size.
        num_batches: batches to evaluate (fewer if the dev set is smaller).
        num_audio_samples: items of the first batch given to ``write_samples``.
        out_dir: ``run_dir/samples/step_N``.
        device: where to run.
        write_samples: ``(out_dir, refs, recs) -> files`` (None: write nothing).

    Returns:
        Metric name -> mean value.
    """
    generator = task.generator
    was_training = generator.training
    generator.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    sums: dict[str, float] = {}
    count = 0
    try:
        for i, batch in enumerate(loader):
            if i >= num_batches:
                break
            batch = to_device(batch, device)
            metrics, recon = task.validation_step(batch)
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if i == 0 and num_audio_samples > 0 and write_samples is not None and recon is not None:
                refs = batch[0] if isinstance(batch, list | tuple) else batch
                n = min(num_audio_samples, refs.shape[0])
                write_samples(out_dir, refs[:n], recon[:n])
    finally:
        generator.train(was_training)
    return {k: v / max(count, 1) for k, v in sums.items()}


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (a tensor, or a list/tuple of tensors such as ``(images, labels)``) on
    ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(b, device) for b in batch)
    return batch
