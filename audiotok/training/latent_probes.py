"""What a codec's latent carries: the collapse signals that validation logs.

A codec can use every codebook and still carry almost nothing (the old default), or carry
the envelope and no pitch (the v2 default up to step 10000). These measures show it from
the latent alone, without listening:

* :func:`participation_ratio`: the latent's effective dimension;
* :func:`residual_ratios`: ``resid@k``, what is left of the latent after ``k`` RVQ stages;
* :func:`harmonic_ripple` and :func:`unexplained_fraction`: how much of each frame's
  harmonic fine structure (pitch) a cross-fitted ridge regression from the quantized latent
  cannot explain; also a training loss (``loss.latent_harmonics``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from audiotok.audio.istft import framed_log_magnitude

__all__ = ["participation_ratio", "residual_ratios", "harmonic_ripple", "unexplained_fraction"]


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
