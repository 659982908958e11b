"""What a codec's latent carries: the collapse signals that validation logs.

A codec can use every codebook and still carry almost nothing (the old default), or carry
the envelope and no pitch (the v2 default up to step 10000). These measures show it from
the latent alone, without listening:

* :func:`participation_ratio`: the latent's effective dimension;
* :func:`residual_ratios`: ``resid@k``, what is left of the latent after ``k`` RVQ stages;
* :func:`harmonic_ripple` and :func:`unexplained_fraction`: how much of each frame's
  harmonic fine structure (pitch) a cross-fitted ridge regression from the quantized latent
  cannot explain; also a training loss (``loss.latent_harmonics``);
* :func:`pitch_salience`: a subharmonic-summation pitch salience curve per frame, read off
  that ripple; the target of a codec's pitch head (``loss.pitch``), which asks the codes to
  carry pitch in any form a small MLP can read, not linearly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from audiotok.audio.istft import framed_log_magnitude

__all__ = [
    "participation_ratio",
    "residual_ratios",
    "harmonic_ripple",
    "unexplained_fraction",
    "pitch_salience",
    "salience_matrix",
    "head_unexplained",
    "pitch_head_loss",
]


def participation_ratio(x: Tensor) -> float:
    """Effective dimension of vectors ``x (..., D)``: ``(sum l)^2 / sum l^2`` over the
    eigenvalues ``l`` of their covariance; 1 when all variance lies along one direction,
    D when it is spread evenly over D."""
    flat = x.reshape(-1, x.shape[-1]).double()
    if flat.shape[0] < 2:
        return float("nan")
    flat = flat - flat.mean(0)
    eig = torch.linalg.eigvalsh(flat.T @ flat / (flat.shape[0] - 1)).clamp(min=0)
    total = eig.sum()
    return float(total.square() / eig.square().sum()) if total > 0 else 0.0


def residual_ratios(codec: Any, latent: Tensor) -> dict[str, float]:
    """``resid@k = ||z - decode(codes[:k])|| / ||z||`` for ``k`` in 1, 2, 4, K (residual codecs)."""
    quantizer = codec.quantizer
    if not quantizer.codes_have_codebook_dim or not quantizer.supports_partial_codebooks:
        return {}
    z = latent.float().transpose(1, 2)  # (B, T', D)
    codes = quantizer.encode(z)  # (B, T', K)
    norm = z.norm().clamp_min(1e-12)
    out: dict[str, float] = {}
    k_all = codes.shape[-1]
    for k in sorted({1, 2, 4, k_all}):
        if k <= k_all:
            out[f"resid@{k}"] = float((z - quantizer.decode(codes[..., :k])).norm() / norm)
    return out


def harmonic_ripple(wav: Tensor, hop: int, sample_rate: int, max_hz: float = 2000.0) -> Tensor:
    """The harmonic fine structure of each code frame: ``(B * T', bins up to max_hz)``.

    Log-magnitude of a Hann-windowed FFT of ``4 * hop`` samples per frame (the codec's own
    framing), minus its cepstrally smoothed envelope (quefrencies under 1.25 ms, i.e.
    detail finer than 800 Hz, are removed), channels averaged. A voice's harmonics are a
    ripple here whose period in bins is its pitch; the envelope (formants, loudness) is not.
    """
    n_fft = 4 * hop
    with torch.no_grad(), torch.autocast(device_type=wav.device.type, enabled=False):
        logmag = framed_log_magnitude(wav, n_fft, hop).mean(1)  # (B, T', bins)
        cep = torch.fft.irfft(logmag, n=n_fft, dim=-1)
        keep = max(1, int(sample_rate / 800))
        cep[..., keep : n_fft - keep + 1] = 0
        envelope = torch.fft.rfft(cep, dim=-1).real
        bins = int(max_hz * n_fft / sample_rate) + 1
        ripple = (logmag - envelope)[..., 1:bins]  # (B, T', K)
    return ripple.reshape(-1, ripple.shape[-1])


def unexplained_fraction(latent: Tensor, target: Tensor, ridge: float = 1e-2) -> Tensor:
    """How much of ``target (B * T', K)`` a ridge regression from the frames of ``latent
    (B, T', D)`` cannot explain: ``|Y - Z W|^2 / |Y|^2`` (both centred), cross-fitted in
    closed form on this batch (W fitted on the even items scores the odd ones and the other
    way round, so features that explain nothing score about 1, not what they overfit).
    Differentiable in the latent: minimising it makes the latent carry the target linearly;
    there is no probe to train or to export."""
    b, t, d = latent.shape
    z = latent.double()
    y = target.double().to(z.device).reshape(b, t, -1)
    folds = [(slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(0, None, 2))]
    if b < 2:
        folds = [(slice(None), slice(None))]
    residual = z.new_zeros(())
    total = z.new_zeros(())
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    for fit, score in folds:
        zf, yf = z[fit].reshape(-1, d), y[fit].reshape(-1, y.shape[-1])
        zs, ys = z[score].reshape(-1, d), y[score].reshape(-1, y.shape[-1])
        mz, my = zf.mean(0), yf.mean(0)
        zf, yf, zs, ys = zf - mz, yf - my, zs - mz, ys - my
        gram = zf.T @ zf
        scale = gram.diagonal().mean().clamp(min=1e-12)
        weights = torch.linalg.solve(gram + ridge * scale * eye, zf.T @ yf)
        residual = residual + (ys - zs @ weights).square().sum()
        total = total + ys.square().sum()
    return (residual / total.clamp(min=1e-12)).float()


def salience_matrix(
    n_fft: int,
    sample_rate: int,
    bins: int = 64,
    fmin: float = 60.0,
    fmax: float = 480.0,
    max_hz: float = 2000.0,
) -> Tensor:
    """The linear map from :func:`harmonic_ripple` frames to pitch salience: ``(K, bins)``.

    Column ``j`` averages the ripple at the harmonics ``h * f_j`` below ``max_hz`` of the
    candidate ``f_j`` (``bins`` of them, log-spaced from ``fmin`` to ``fmax``; linear
    interpolation between FFT bins). A voice at ``f0`` has peaks at all of its harmonics,
    so ``f0`` scores high; ``f0 / 2`` lands every other harmonic in a valley and scores
    low; ``2 * f0`` keeps half the harmonics and scores high too (an octave ambiguity the
    pitch head is free to keep: it has to carry pitch, not name it).
    """
    ripple_bins = int(max_hz * n_fft / sample_rate)  # ripple column i is FFT bin i + 1
    cands = fmin * (fmax / fmin) ** (torch.arange(bins, dtype=torch.float64) / max(bins - 1, 1))
    out = torch.zeros(ripple_bins, bins, dtype=torch.float64)
    for j, f0 in enumerate(cands.tolist()):
        harmonics = [h * f0 for h in range(1, int(max_hz // f0) + 1)]
        for f in harmonics:
            pos = f * n_fft / sample_rate - 1.0
            lo = int(pos)
            frac = pos - lo
            if 0 <= lo < ripple_bins:
                out[lo, j] += (1.0 - frac) / len(harmonics)
            if 0 <= lo + 1 < ripple_bins:
                out[lo + 1, j] += frac / len(harmonics)
    return out.float()


def check_pitch_resolution(hop: int, sample_rate: int, fmin: float = 60.0) -> None:
    """Raise ``ValueError`` when frames of ``4 * hop`` samples cannot resolve a voice's
    harmonics (FFT bins wider than the lowest candidate pitch)."""
    width = sample_rate / (4 * hop)
    if width > fmin:
        raise ValueError(
            f"frames of {4 * hop} samples at {sample_rate} Hz have {width:.0f} Hz bins, too "
            f"coarse for pitch (at most {fmin:.0f} Hz: a hop of {math.ceil(sample_rate / (4 * fmin))} "
            "samples or more)"
        )


def pitch_salience(wav: Tensor, hop: int, sample_rate: int, bins: int = 64) -> Tensor:
    """Pitch salience of each code frame, ``(B, T', bins)``: :func:`harmonic_ripple`
    through :func:`salience_matrix` (candidates 60-480 Hz, harmonics below 2 kHz)."""
    b = wav.shape[0]
    ripple = harmonic_ripple(wav, hop, sample_rate)  # (B * T', K)
    m = salience_matrix(4 * hop, sample_rate, bins).to(ripple.device)
    return (ripple @ m).reshape(b, -1, bins)


def head_unexplained(predicted: Tensor, target: Tensor) -> Tensor:
    """``|target - predicted|^2 / |target - mean(target)|^2`` over frames: 1 for a head that
    only knows the mean, 0 for one that reads every frame's target off the codes. fp32."""
    t = target.float().reshape(-1, target.shape[-1])
    p = predicted.float().reshape(-1, predicted.shape[-1])
    total = (t - t.mean(0)).square().sum().clamp(min=1e-6 * t.numel())
    return (p - t).square().sum() / total


def pitch_head_loss(codec: Any, quantized: Tensor, wav: Tensor) -> Tensor:
    """``loss.pitch``: the fraction of each frame's :func:`pitch_salience` that
    ``codec.pitch_head`` cannot read off ``quantized (B, T', D)``, the latent that decoded
    ``wav (B, C, T)`` (:func:`head_unexplained`; fp32, differentiable in both)."""
    predicted = codec.pitch_head(quantized.float())
    target = pitch_salience(
        codec._pad(wav.float()), codec.hop_length, codec.sample_rate, predicted.shape[-1]
    )
    return head_unexplained(predicted, target)
