"""PNG figures for evaluation reports: spectrogram comparisons and codebook usage.

matplotlib is imported inside the functions and drawn through its Agg canvas directly
(``matplotlib.figure.Figure``), never through ``pyplot``, so no global backend or figure
state is touched and nothing needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def log_spectrogram(
    wav: np.ndarray, n_fft: int = 1024, hop_length: int = 256, floor_db: float = -100.0
) -> np.ndarray:
    """Log-magnitude STFT of a mono mix, for display.

    Args:
        wav: ``(C, T)`` or ``(T,)`` float audio.
        n_fft: FFT size (Hann window of the same length).
        hop_length: frame step in samples.
        floor_db: lowest level kept, in dB.

    Returns:
        ``(n_fft // 2 + 1, frames)`` float32 in dB (re full scale, floored).
    """
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = 1 + (x.size - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]
    window = np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(x[idx] * window, axis=-1)) / (window.sum() / 2)
    db = 20.0 * np.log10(np.maximum(mag, 10.0 ** (floor_db / 20.0)))
    return db.T.astype(np.float32)


def plot_spectrograms(
    panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, path: str | Path, title: str = ""
) -> Path:
    """Stack log spectrograms of several versions of one clip, one panel each.

    Args:
        panels: ``(label, wav)`` pairs; ``wav: (C, T)`` or ``(T,)`` at ``sample_rate``.
        sample_rate: rate of every panel's audio in Hz.
        path: PNG to write.
        title: figure title.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_fft = 1024 if sample_rate >= 32_000 else 512
    hop = n_fft // 4
    fig = Figure(figsize=(9.0, 1.9 * len(panels) + 0.4), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (label, wav) in zip(axes, panels, strict=True):
        spec = log_spectrogram(wav, n_fft=n_fft, hop_length=hop)
        extent = (0.0, spec.shape[1] * hop / sample_rate, 0.0, sample_rate / 2000.0)
        image = ax.imshow(
            spec, origin="lower", aspect="auto", extent=extent, vmin=-100.0, vmax=0.0, cmap="magma"
        )
        ax.set_ylabel("kHz")
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1].set_xlabel("seconds")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="dB", shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def plot_code_usage(
    counts: np.ndarray, path: str | Path, entropy_bits: Sequence[float] | None = None
) -> Path:
    """Codebook usage: a heat map of code counts and per-codebook usage/entropy bars.

    Args:
        counts: ``(K, codebook_size)`` how often each code of each codebook was used.
        path: PNG to write.
        entropy_bits: optional ``K`` entropies in bits (drawn against ``log2(codebook_size)``).

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(counts, dtype=np.float64)
    num_codebooks, codebook_size = counts.shape
    fig = Figure(figsize=(10.0, 0.35 * num_codebooks + 2.5), dpi=80)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    image = left.imshow(
        np.log10(1.0 + counts),
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        extent=(-0.5, codebook_size - 0.5, num_codebooks - 0.5, -0.5),
    )
    left.set_xlabel("code index")
    left.set_ylabel("codebook")
    left.set_title("log10(1 + count)", fontsize=9)
    fig.colorbar(image, ax=left)
    rows = np.arange(num_codebooks)
    usage = (counts > 0).mean(axis=1)
    right.barh(rows, usage, color="tab:blue", label="used fraction")
    if entropy_bits is not None:
        right.plot(
            np.asarray(entropy_bits) / max(np.log2(codebook_size), 1e-9),
            rows,
            "o",
            color="tab:orange",
            label="entropy / log2(size)",
        )
    right.set_xlim(0.0, 1.05)
    right.set_ylim(num_codebooks - 0.5, -0.5)
    right.set_yticks(rows)
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
