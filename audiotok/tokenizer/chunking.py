"""Chunk planning for exact chunked encoding and decoding: windows, batches and contexts.

Chunking is exact, not approximate. A non-causal conv encoder's frame ``j`` depends only on
samples within its receptive field, so the audio is cut into chunks ``[keep_start, keep_end)``
on the frame grid, each encoded in a :class:`Window` with ``context`` extra samples either side
(``context`` >= the receptive field, rounded up to whole frames) clipped to ``[0, T]``, and only
the chunk's own frames are kept. A window clipped at the true end of the signal sees exactly the
padding the whole signal gets, so the codes equal those of one un-chunked ``model.encode`` and
do not depend on the chunk size. Windows of equal length are batched together
(:func:`equal_length_runs`), so a padded batch gives the codes of each item encoded alone.

Decoding does the same in frames, with a decoder context measured once
(:func:`measure_decoder_context`) by perturbing one code frame and watching which output
samples change. Recurrent layers (LSTM) have unbounded context; such models are processed in
one piece (both contexts are ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "Window",
    "plan_windows",
    "equal_length_runs",
    "encoder_context",
    "measure_decoder_context",
    "encode_windows",
    "decode_windows",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """A chunk ``[keep_start, keep_end)`` and the window ``[start, end)`` it is computed in.

    Units are samples when encoding, code frames when decoding. Always
    ``start <= keep_start < keep_end <= end``.
    """

    start: int
    end: int
    keep_start: int
    keep_end: int

    @property
    def length(self) -> int:
        """``end - start``: windows of equal length can share a batch."""
        return self.end - self.start

    def shifted(self, offset: int) -> Window:
        """The same window with every bound moved by ``-offset`` (into a buffer's coordinates)."""
        return Window(
            self.start - offset, self.end - offset, self.keep_start - offset, self.keep_end - offset
        )


#: ``(item, window)``: a window of one item of a batch
Job = tuple[int, Window]


def plan_windows(total: int, chunk: int, context: int) -> list[Window]:
    """Chunks of ``chunk`` units covering ``[0, total)``, with ``context`` either side.

    Args:
        total: length of the signal.
        chunk: length of each kept chunk (the last may be shorter).
        context: extra units on each side; windows are clipped to ``[0, total]``.

    Returns:
        One :class:`Window` per chunk, in order.
    """
    return [
        Window(max(0, s - context), min(total, s + chunk + context), s, min(total, s + chunk))
        for s in range(0, total, chunk)
    ]


def equal_length_runs(items: list[T], length: Callable[[T], int], size: int) -> Iterator[list[T]]:
    """Runs of at most ``size`` consecutive items of equal ``length(item)``, in order."""
    run: list[T] = []
    for item in items:
        if run and (len(run) == size or length(run[0]) != length(item)):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def is_recurrent(model: nn.Module) -> bool:
    """Whether ``model`` has a recurrent layer (unbounded context: never chunked)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def encoder_context(model: nn.Module) -> int | None:
    """Samples of encoder context per side: the receptive field rounded up to whole frames, plus
    one frame; ``None`` for a recurrent model (no chunking)."""
    if is_recurrent(model):
        return None
    hop = int(model.hop_length)
    return (math.ceil(model.receptive_field / hop) + 1) * hop


def measure_decoder_context(model: nn.Module) -> int | None:
    """Code frames of decoder context per side, measured by perturbing one input frame.

    The decoder's input is perturbed as a latent vector (``decode_latent``) where the model has
    one, so that the measurement also holds when codebook entries coincide (e.g. before k-means
    initialisation); else as codes. Frames whose change reaches the ends of the probe mean a
    longer probe; none within 1024 frames means no chunking.

    Args:
        model: an audio codec in eval mode (``hop_length``, ``decode``, ``num_codebooks``,
            ``codebook_size``; ``decode_latent`` and ``quantizer.dim`` where it has them).

    Returns:
        Frames of context per side (at least 1), or ``None``: the model cannot be chunked.
    """
    if is_recurrent(model):
        return None
    hop, gen = int(model.hop_length), torch.Generator().manual_seed(0)
    codebook_size, num_codebooks = int(model.codebook_size), int(model.num_codebooks)
    device = next(model.parameters()).device
    latent = hasattr(model, "decode_latent") and hasattr(model.quantizer, "dim")
    frames = 16
    while frames <= 1024:
        mid = frames // 2
        if latent:
            x = torch.randn(1, int(model.quantizer.dim), frames, generator=gen)  # (1, D, T')
            run = model.decode_latent
        else:
            x = torch.randint(0, codebook_size, (1, num_codebooks, frames), generator=gen)
            run = model.decode
        changed = torch.zeros(frames * hop, dtype=torch.bool)
        with torch.inference_mode():
            base = run(x.to(device)).float().cpu()  # (1, C, T' * hop)
            for _ in range(2):
                other = x.clone()
                if latent:
                    other[..., mid] += torch.randn(other.shape[1], generator=gen)
                else:
                    shift = torch.randint(
                        1, max(2, codebook_size), (other.shape[1],), generator=gen
                    )
                    other[0, :, mid] = (other[0, :, mid] + shift) % codebook_size
                wav = run(other.to(device)).float().cpu()
                changed |= (wav != base).flatten(0, 1).any(dim=0)
        idx = changed.nonzero().flatten()
        if len(idx) == 0:
            return 1
        if idx[0] > 0 and idx[-1] < frames * hop - 1:
            reach = max(mid * hop - int(idx[0]), int(idx[-1]) + 1 - (mid + 1) * hop, 0)
            return -(-reach // hop) + 1
        frames *= 2
    return None


def encode_windows(
    model: nn.Module,
    sources: list[np.ndarray],
    jobs: list[Job],
    num_codebooks: int,
    batch_size: int,
) -> Iterator[tuple[int, int, Tensor]]:
    """Encode the windows ``jobs`` (in samples) of ``sources [(C, T_b)]``.

    Consecutive jobs with windows of equal length share a forward pass of at most
    ``batch_size`` windows; sort ``jobs`` by window length to batch them well.

    Args:
        model: an audio codec (``encode``, ``hop_length``).
        sources: float32 audio at the model's rate and channels.
        jobs: ``(item of sources, window)`` pairs; keep starts on the frame grid.
        num_codebooks: k, codebooks to keep.
        batch_size: windows per forward pass at most.

    Yields:
        ``(item, keep_start, codes (k, ceil((keep_end - keep_start) / hop)))`` in job order.
    """
    hop, device = int(model.hop_length), next(model.parameters()).device
    for group in equal_length_runs(jobs, lambda j: j[1].length, batch_size):
        batch = np.stack([sources[src][:, w.start : w.end] for src, w in group])
        x = torch.from_numpy(batch).to(device)  # (N, C, window)
        with torch.inference_mode():
            codes = model.encode(x, num_codebooks=num_codebooks).cpu()  # (N, k, F)
        for (src, w), c in zip(group, codes, strict=True):
            first = (w.keep_start - w.start) // hop
            yield src, w.keep_start, c[:, first : first + -(-(w.keep_end - w.keep_start) // hop)]


def decode_windows(
    model: nn.Module,
    items: list[Tensor],
    jobs: list[Job],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, int, Tensor]]:
    """Decode the windows ``jobs`` (in code frames) of ``items [(k, F_b)]``.

    Args:
        model: an audio codec (``decode``, ``hop_length``).
        items: long codes of each item.
        jobs: ``(item, window)`` pairs, batched as in :func:`encode_windows`.
        batch_size: windows per forward pass at most.
        progress: called after each forward pass with ``(keep_end, F_b)`` of its last job.

    Yields:
        ``(item, keep_start, wav (C, (keep_end - keep_start) * hop))`` float32 in job order.
    """
    hop, device = int(model.hop_length), next(model.parameters()).device
    for group in equal_length_runs(jobs, lambda j: j[1].length, batch_size):
        x = torch.stack([items[i][:, w.start : w.end] for i, w in group]).to(device)
        with torch.inference_mode():
            wav = model.decode(x).float().cpu()  # (N, C, window * hop)
        for (i, w), y in zip(group, wav, strict=True):
            yield (
                i,
                w.keep_start,
                y[:, (w.keep_start - w.start) * hop : (w.keep_end - w.start) * hop],
            )
        if progress is not None:
            last, window = group[-1]
            progress(window.keep_end, items[last].shape[-1])
