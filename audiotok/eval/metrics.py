"""Objective metrics for audio codecs: signal distances, perceptual scores, code statistics.

Shapes (every signal metric): ``ref`` and ``est`` are torch tensors or numpy arrays of the same
shape, ``(T,)``, ``(C, T)`` or ``(B, C, T)``. A 1-D or 2-D input is one signal and gives a
0-dim tensor; ``(B, C, T)`` gives ``(B,)``; channels are averaged per item.

* :func:`si_sdr` -- scale-invariant SDR in dB (Le Roux et al., arXiv:1811.02508).
* :func:`mel_distance` -- multi-scale log-mel L1, the "mel distance" of DAC (arXiv:2306.06546).
* :func:`stft_distance` -- multi-resolution STFT distance (Parallel WaveGAN, arXiv:1910.11480).
* :func:`stoi`, :func:`pesq`, :func:`visqol` -- optional packages imported lazily; each
  returns None (and warns once with the reason) when its package is missing.
* :func:`codebook_usage`, :func:`codebook_entropy_bits`, :func:`bitrate` -- code statistics.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def _pair(ref: ArrayLike, est: ArrayLike) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """-> (ref, est) as float64 ``(B, C, T)`` tensors and whether the input was batched."""
    r = torch.as_tensor(np.asarray(ref) if isinstance(ref, np.ndarray) else ref).double()
    e = torch.as_tensor(np.asarray(est) if isinstance(est, np.ndarray) else est).double()
    if r.shape != e.shape:
        raise ValueError(f"ref and est shapes differ: {tuple(r.shape)} vs {tuple(e.shape)}")
    if r.dim() not in (1, 2, 3):
        raise ValueError(f"expected (T,), (C, T) or (B, C, T), got {tuple(r.shape)}")
    batched = r.dim() == 3
    while r.dim() < 3:
        r, e = r.unsqueeze(0), e.unsqueeze(0)
    return r, e, batched


def _out(per_item: torch.Tensor, batched: bool) -> torch.Tensor:
    per_item = per_item.float()
    return per_item if batched else per_item[0]


def si_sdr(
    ref: ArrayLike, est: ArrayLike, zero_mean: bool = True, eps: float = 1e-10
) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better).

    ``a = <est, ref> / ||ref||^2``, ``SI-SDR = 10 log10(||a ref||^2 / ||a ref - est||^2)``,
    after removing each signal's mean when ``zero_mean``. Both energies are floored at
    ``eps``, so identical signals give a large finite value (about ``10 log10(E / eps)``)
    instead of inf, and a silent reference gives 0 dB.

    Args:
        ref: reference ``(T,)``, ``(C, T)`` or ``(B, C, T)``.
        est: estimate, same shape.
        zero_mean: subtract the mean over time first (the usual definition).
        eps: energy floor.

    Returns:
        dB, averaged over channels: 0-dim, or ``(B,)`` for batched input.
    """
    r, e, batched = _pair(ref, est)
    if zero_mean:
        r = r - r.mean(-1, keepdim=True)
        e = e - e.mean(-1, keepdim=True)
    alpha = (e * r).sum(-1, keepdim=True) / (r.square().sum(-1, keepdim=True) + eps)
    target = alpha * r
    signal = target.square().sum(-1).clamp_min(eps)
    noise = (target - e).square().sum(-1).clamp_min(eps)
    return _out((10 * torch.log10(signal / noise)).mean(-1), batched)


@functools.lru_cache(maxsize=32)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    from audiotok.audio.melbank import mel_filterbank

    fb = mel_filterbank(sample_rate, n_fft, n_mels, 0.0, None)
    return torch.from_numpy(fb).double()  # (n_mels, n_fft // 2 + 1)


def _stft_mag(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """``x: (N, T)`` -> magnitude ``(N, n_fft // 2 + 1, frames)`` (Hann, centred, reflect)."""
    pad = n_fft // 2
    if x.shape[-1] <= pad:  # reflect padding needs T > pad
        x = torch.nn.functional.pad(x, (0, pad + 1 - x.shape[-1]))
    window = torch.hann_window(win, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True
    )
    return spec.abs()


def mel_distance(
    ref: ArrayLike,
    est: ArrayLike,
    sample_rate: int,
    window_lengths: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
    n_mels: Sequence[int] = (5, 10, 20, 40, 80, 160, 320),
    clamp_eps: float = 1e-5,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-scale log-mel L1 distance (lower is better; 0 for identical signals).

    For each scale ``s`` with window ``w_s`` and ``m_s`` mel bands: ``S = |STFT(x)|`` with a
    Hann window of ``w_s`` samples, ``n_fft = w_s``, hop ``w_s // 4``, centred (reflect
    padding); ``M = F_s S`` with a Slaney mel filterbank (librosa's, computed by
    :mod:`audiotok.audio.melbank`; 0 Hz to Nyquist);
    ``d_s = mean |log10(max(M_ref, eps)) - log10(max(M_est, eps))|`` over bands, frames and
    channels. The result is the mean of ``d_s`` over scales (``reduction="mean"``) or their
    sum (``"sum"``, which is what DAC's MelSpectrogramLoss reports with these default scales).

    Args:
        ref: reference ``(T,)``, ``(C, T)`` or ``(B, C, T)``.
        est: estimate, same shape.
        sample_rate: rate in Hz (sets the mel scale).
        window_lengths: STFT window per scale.
        n_mels: mel bands per scale (same length as ``window_lengths``).
        clamp_eps: floor before the log.
        reduction: ``"mean"`` or ``"sum"`` over scales.

    Returns:
        0-dim, or ``(B,)`` for batched input.
    """
    if len(window_lengths) != len(n_mels):
        raise ValueError("window_lengths and n_mels must have the same length")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    r, e, batched = _pair(ref, est)
    b, c, t = r.shape
    both = torch.cat([r, e]).reshape(2 * b * c, t)
    total = torch.zeros(b, dtype=torch.float64)
    for win, mels in zip(window_lengths, n_mels, strict=True):
        mag = _stft_mag(both, win, win // 4, win)
        mel = torch.einsum("mf,nft->nmt", _mel_basis(sample_rate, win, mels), mag)
        logmel = mel.clamp_min(clamp_eps).log10().reshape(2, b, c, mels, -1)
        total += (logmel[0] - logmel[1]).abs().mean(dim=(1, 2, 3))
    if reduction == "mean":
        total /= len(window_lengths)
    return _out(total, batched)


def stft_distance(
    ref: ArrayLike,
    est: ArrayLike,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
    hop_sizes: Sequence[int] = (128, 256, 512),
    win_lengths: Sequence[int] = (512, 1024, 2048),
    eps: float = 1e-7,
) -> torch.Tensor:
    """Multi-resolution STFT distance (lower is better; 0 for identical signals).

    Per resolution, with ``S = |STFT|`` (Hann, centred): spectral convergence
    ``||S_ref - S_est||_F / ||S_ref||_F`` plus log-magnitude L1
    ``mean |log(S_ref + eps) - log(S_est + eps)|``, both per channel; the result is the mean
    over resolutions and channels.

    Args:
        ref: reference ``(T,)``, ``(C, T)`` or ``(B, C, T)``.
        est: estimate, same shape.
        fft_sizes, hop_sizes, win_lengths: one entry per resolution.
        eps: floor inside the log and the convergence denominator.

    Returns:
        0-dim, or ``(B,)`` for batched input.
    """
    r, e, batched = _pair(ref, est)
    b, c, t = r.shape
    both = torch.cat([r, e]).reshape(2 * b * c, t)
    total = torch.zeros(b, dtype=torch.float64)
    for n_fft, hop, win in zip(fft_sizes, hop_sizes, win_lengths, strict=True):
        mag = _stft_mag(both, n_fft, hop, win).reshape(2, b, c, n_fft // 2 + 1, -1)
        diff = (mag[0] - mag[1]).square().sum(dim=(-2, -1)).sqrt()
        sc = diff / mag[0].square().sum(dim=(-2, -1)).sqrt().clamp_min(eps)
        logmag = ((mag[0] + eps).log() - (mag[1] + eps).log()).abs().mean(dim=(-2, -1))
        total += (sc + logmag).mean(-1)
    return _out(total / len(fft_sizes), batched)


@functools.cache
def _warn_missing(name: str, reason: str) -> None:
    warnings.warn(f"{name} is unavailable: {reason}", RuntimeWarning, stacklevel=3)


def metric_unavailable_reason(name: str) -> str | None:
    """Why an optional metric (``"stoi"``, ``"pesq"``, ``"visqol"``) cannot run, or None."""
    module, extra = {
        "stoi": ("pystoi", "pip install pystoi (or audiotok[metrics])"),
        "pesq": ("pesq", "pip install pesq (or audiotok[metrics])"),
        "visqol": ("visqol", "pip install visqol-python"),
    }[name]
    if importlib.util.find_spec(module) is None:
        return f"package {module!r} is not installed; {extra}"
    return None


def _mono_items(ref: ArrayLike, est: ArrayLike) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    r, e, batched = _pair(ref, est)
    return list(r.mean(1).numpy()), list(e.mean(1).numpy()), batched


def _per_item(values: list[float], batched: bool) -> torch.Tensor:
    return _out(torch.tensor(values, dtype=torch.float64), batched)


def stoi(
    ref: ArrayLike, est: ArrayLike, sample_rate: int, extended: bool = False
) -> torch.Tensor | None:
    """Short-time objective intelligibility (pystoi; resamples to 10 kHz itself), mono mix.

    Returns:
        STOI in [0, 1] (ESTOI with ``extended``): 0-dim or ``(B,)``; None if pystoi is missing.
    """
    if reason := metric_unavailable_reason("stoi"):
        _warn_missing("stoi", reason)
        return None
    from pystoi import stoi as _stoi

    refs, ests, batched = _mono_items(ref, est)
    return _per_item(
        [_stoi(r, x, sample_rate, extended=extended) for r, x in zip(refs, ests, strict=True)],
        batched,
    )


def pesq(ref: ArrayLike, est: ArrayLike, sample_rate: int, mode: str = "wb") -> torch.Tensor | None:
    """PESQ MOS-LQO (ITU-T P.862.2 wide band at 16 kHz, or P.862 narrow band at 8 kHz).

    Both signals are mixed to mono and resampled with soxr to 16 kHz (``"wb"``) or 8 kHz
    (``"nb"``). Items PESQ rejects (e.g. no speech detected) give NaN.

    Returns:
        Scores (about -0.5 to 4.6): 0-dim or ``(B,)``; None if the pesq package is missing.
    """
    if mode not in ("wb", "nb"):
        raise ValueError(f"mode must be 'wb' or 'nb', got {mode!r}")
    if reason := metric_unavailable_reason("pesq"):
        _warn_missing("pesq", reason)
        return None
    import soxr
    from pesq import pesq as _pesq

    rate = 16000 if mode == "wb" else 8000
    refs, ests, batched = _mono_items(ref, est)
    scores = []
    for r, x in zip(refs, ests, strict=True):
        r16 = soxr.resample(r, sample_rate, rate, quality="HQ")
        x16 = soxr.resample(x, sample_rate, rate, quality="HQ")
        try:
            scores.append(float(_pesq(rate, r16, x16, mode)))
        except Exception:  # pesq raises NoUtterancesError, BufferTooShortError, ...
            scores.append(math.nan)
    return _per_item(scores, batched)


def visqol(
    ref: ArrayLike, est: ArrayLike, sample_rate: int, mode: str = "audio"
) -> torch.Tensor | None:
    """ViSQOL v3 MOS-LQO via :mod:`audiotok.eval.visqol` (``"audio"`` 48 kHz or ``"speech"``).

    Returns:
        MOS-LQO in [1, 5]: 0-dim or ``(B,)``; None if visqol-python is missing.
    """
    if reason := metric_unavailable_reason("visqol"):
        _warn_missing("visqol", reason)
        return None
    from audiotok.eval.visqol import ViSQOL

    scorer = ViSQOL(mode)  # type: ignore[arg-type]
    refs, ests, batched = _mono_items(ref, est)
    return _per_item([scorer(r, x, sample_rate) for r, x in zip(refs, ests, strict=True)], batched)


def _codes_kt(codes: ArrayLike) -> torch.Tensor:
    """``(T,)``, ``(K, T)`` or ``(B, K, T)`` codes -> ``(K, N)`` long."""
    c = torch.as_tensor(np.asarray(codes) if isinstance(codes, np.ndarray) else codes).long()
    if c.dim() == 1:
        return c[None]
    if c.dim() == 2:
        return c
    if c.dim() == 3:
        return c.transpose(0, 1).reshape(c.shape[1], -1)
    raise ValueError(f"expected codes (T,), (K, T) or (B, K, T), got {tuple(c.shape)}")


def _histograms(codes: ArrayLike, codebook_size: int) -> torch.Tensor:
    c = _codes_kt(codes)
    if c.numel() and (c.min() < 0 or c.max() >= codebook_size):
        raise ValueError(f"codes must be in [0, {codebook_size}), got [{c.min()}, {c.max()}]")
    offsets = torch.arange(c.shape[0])[:, None] * codebook_size
    flat = (c + offsets).reshape(-1)
    return torch.bincount(flat, minlength=c.shape[0] * codebook_size).reshape(-1, codebook_size)


def codebook_usage(codes: ArrayLike, codebook_size: int) -> torch.Tensor:
    """Fraction of each codebook's entries that occur at least once.

    Args:
        codes: ``(B, K, T)``, ``(K, T)`` or ``(T,)`` integer codes in ``[0, codebook_size)``.
        codebook_size: entries per codebook.

    Returns:
        ``(K,)`` float in ``[0, 1]``.
    """
    return (_histograms(codes, codebook_size) > 0).float().mean(-1)


def codebook_entropy_bits(codes: ArrayLike, codebook_size: int) -> torch.Tensor:
    """Entropy of each codebook's empirical code distribution, in bits.

    ``H_k = -sum_i p_ki log2 p_ki``; at most ``log2(codebook_size)`` (uniform use). The gap
    to that bound is how much an entropy coder could save.

    Args:
        codes: ``(B, K, T)``, ``(K, T)`` or ``(T,)`` integer codes.
        codebook_size: entries per codebook.

    Returns:
        ``(K,)`` float.
    """
    counts = _histograms(codes, codebook_size).double()
    p = counts / counts.sum(-1, keepdim=True).clamp_min(1)
    logp = torch.where(p > 0, p.log2(), torch.zeros_like(p))
    return (-(p * logp).sum(-1)).float()


def bitrate(frame_rate: float, num_codebooks: int, codebook_size: int) -> float:
    """kbps of fixed-length codes: ``frame_rate * num_codebooks * log2(codebook_size) / 1000``."""
    return float(frame_rate) * int(num_codebooks) * math.log2(int(codebook_size)) / 1000.0
