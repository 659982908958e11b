"""Reconstruction and adversarial losses for codec training; all take audio ``(B, C, T)``.

* :class:`MultiScaleMelLoss`: L1 between log-mel spectrograms at several FFT sizes (EnCodec
  arXiv:2210.13438 section 3.4; DAC arXiv:2306.06546 uses 7 scales, 32 to 2048 samples, with
  5 to 320 mel bands, the default here).
* :class:`MultiResolutionSTFTLoss`: spectral convergence plus log-magnitude L1 over several
  STFT resolutions (Parallel WaveGAN, arXiv:1910.11480).
* :class:`PhaseDerivativeLoss`: energy-weighted, wrap-free distance between the phase
  derivatives (instantaneous frequency across frames, group delay across bins) of two
  STFTs (APNet's phase losses, arXiv:2305.07952, taken on the waveforms).
* :func:`feature_matching_loss`: L1 between discriminator feature maps of real and generated
  audio (MelGAN, arXiv:1910.06711).
* :func:`hinge_discriminator_loss`, :func:`hinge_generator_loss`: hinge GAN losses averaged
  over sub-discriminators (as in EnCodec/SoundStream).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "MultiScaleMelLoss",
    "MultiResolutionSTFTLoss",
    "PhaseDerivativeLoss",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
]


def _stft(wav: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """``wav: (B, C, T)`` -> ``(B * C, n_fft // 2 + 1, frames)`` complex STFT, fp32."""
    return torch.stft(
        wav.reshape(-1, wav.shape[-1]).float(),
        n_fft,
        hop,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def _magnitude(wav: Tensor, n_fft: int, hop: int, window: Tensor, eps: float) -> Tensor:
    """``wav: (B, C, T)`` -> ``(B * C, n_fft // 2 + 1, frames)`` STFT magnitude (>= sqrt(eps))."""
    spec = _stft(wav, n_fft, hop, window)
    # sqrt of a clamped power keeps the gradient finite where the spectrum is exactly zero
    return (spec.real.square() + spec.imag.square()).clamp(min=eps).sqrt()


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 3:
        raise ValueError(
            f"expected two (B, C, T) tensors of the same shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of ``L1(log10 mel(x), log10 mel(y))``.

    Args:
        sample_rate: audio sample rate (Hz), for the mel filterbanks.
        n_ffts: FFT sizes (Hann window of the same length).
        n_mels: mel bands per scale (one int for all, or one per scale).
        hop_ratio: hop length as a fraction of each FFT size.
        fmin: lowest mel frequency (Hz).
        fmax: highest mel frequency (Hz; default ``sample_rate / 2``).
        eps: floor of the mel magnitude before the log.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        n_ffts: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
        n_mels: int | Sequence[int] = (5, 10, 20, 40, 80, 160, 320),
        hop_ratio: float = 0.25,
        fmin: float = 0.0,
        fmax: float | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        from audiotok.audio.melbank import mel_filterbank

        mels = [n_mels] * len(n_ffts) if isinstance(n_mels, int) else list(n_mels)
        if len(mels) != len(n_ffts):
            raise ValueError(f"n_mels has {len(mels)} entries for {len(n_ffts)} n_ffts")
        self.n_ffts = tuple(int(n) for n in n_ffts)
        self.hops = tuple(max(1, int(n * hop_ratio)) for n in self.n_ffts)
        self.eps = eps
        for i, (n_fft, n_mel) in enumerate(zip(self.n_ffts, mels, strict=True)):
            fb = mel_filterbank(sample_rate, n_fft, n_mel, fmin, fmax)
            self.register_buffer(f"mel_{i}", torch.from_numpy(fb).float(), persistent=False)
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``x, y: (B, C, T)`` (prediction, target) -> scalar loss."""
        _check_pair(x, y)
        total = x.new_zeros((), dtype=torch.float32)
        for i, (n_fft, hop) in enumerate(zip(self.n_ffts, self.hops, strict=True)):
            window, fb = getattr(self, f"window_{i}"), getattr(self, f"mel_{i}")
            mel_x = fb @ _magnitude(x, n_fft, hop, window, 1e-12)  # (B*C, n_mels, frames)
            mel_y = fb @ _magnitude(y, n_fft, hop, window, 1e-12)
            total = total + F.l1_loss(
                mel_x.clamp(min=self.eps).log10(), mel_y.clamp(min=self.eps).log10()
            )
        return total / len(self.n_ffts)


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of spectral convergence + log-magnitude L1.

    Spectral convergence is ``||S_y - S_x||_F / ||S_y||_F`` on magnitudes; the log term is
    ``L1(log S_x, log S_y)``.

    Args:
        n_ffts: FFT sizes (Hann windows of the same length).
        hop_ratio: hop length as a fraction of each FFT size.
        eps: floor of the power spectrum (keeps logs and gradients finite).
    """

    def __init__(
        self,
        *,
        n_ffts: Sequence[int] = (512, 1024, 2048),
        hop_ratio: float = 0.25,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        self.n_ffts = tuple(int(n) for n in n_ffts)
        self.hops = tuple(max(1, int(n * hop_ratio)) for n in self.n_ffts)
        self.eps = eps
        for i, n_fft in enumerate(self.n_ffts):
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``x, y: (B, C, T)`` (prediction, target) -> scalar loss."""
        _check_pair(x, y)
        total = x.new_zeros((), dtype=torch.float32)
        for i, (n_fft, hop) in enumerate(zip(self.n_ffts, self.hops, strict=True)):
            window = getattr(self, f"window_{i}")
            mag_x = _magnitude(x, n_fft, hop, window, self.eps)
            mag_y = _magnitude(y, n_fft, hop, window, self.eps)
            # vector_norm's gradient is zero (not NaN) at zero, so identical inputs are fine
            convergence = torch.linalg.vector_norm(mag_y - mag_x) / torch.linalg.vector_norm(
                mag_y
            ).clamp(min=self.eps)
            total = total + convergence + F.l1_loss(mag_x.log(), mag_y.log())
        return total / len(self.n_ffts)


class PhaseDerivativeLoss(nn.Module):
    """Distance between the phase derivatives of two signals' STFTs, weighted by energy.

    For each STFT resolution, with ``A_t`` the target frame ``t`` and ``P_t`` the
    prediction's, the *instantaneous frequency* term compares the phase advance from frame
    to frame, ``angle(A_t conj(A_{t-1}))`` against ``angle(P_t conj(P_{t-1}))``, and the
    *group delay* term the phase step from bin to bin. Each pair of angles costs
    ``1 - cos(difference)``, so there is no wrapping to undo (APNet's anti-wrapping, in a
    smooth form), and each bin's cost is weighted by the target's magnitude there,
    normalised per example: the harmonics of a voice decide the loss, not the noise floor,
    whose phase is arbitrary.

    Why: a decoder that predicts magnitude and its own phase (iSTFT heads, GAN vocoders)
    can place every harmonic in the right bin yet let its phase advance drift from frame to
    frame, which moves the frequency actually heard by a few hertz (a 2 % pitch error at
    the fifth harmonic of a 170 Hz voice is 17 Hz). Magnitude losses at the decoder's own
    resolution barely see that; this loss measures it directly. A shift of the whole signal
    in time leaves the instantaneous-frequency term unchanged on stationary sounds.

    Args:
        n_ffts: FFT sizes (Hann windows of the same length).
        hop_ratio: hop as a fraction of each FFT size.
        group_delay: weight of the group-delay term (the instantaneous-frequency term
            weighs 1). Off by default: it also asks for the relative phases of neighbouring
            harmonics and the timing of pulses inside a frame, which a codec whose encoder
            reads magnitudes only cannot know.
        eps: floor of the magnitudes in the normalisation.
    """

    def __init__(
        self,
        *,
        n_ffts: Sequence[int] = (2048, 1024),
        hop_ratio: float = 0.25,
        group_delay: float = 0.0,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        self.n_ffts = tuple(int(n) for n in n_ffts)
        self.hops = tuple(max(1, int(n * hop_ratio)) for n in self.n_ffts)
        self.group_delay = float(group_delay)
        self.eps = eps
        for i, n_fft in enumerate(self.n_ffts):
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft), persistent=False)

    def _term(self, pred: Tensor, target: Tensor, dim: int) -> Tensor:
        """Weighted ``1 - cos`` between the phase steps of two complex STFTs along ``dim``."""
        n = pred.shape[dim]
        prev, nxt = (lambda z: z.narrow(dim, 0, n - 1)), (lambda z: z.narrow(dim, 1, n - 1))
        step_p = nxt(pred) * prev(pred).conj()
        step_t = nxt(target) * prev(target).conj()
        # cos of the angle between the two steps, without atan2 (finite at zero magnitude)
        agree = (step_p * step_t.conj()).real / ((step_p.abs() * step_t.abs()).clamp(min=self.eps))
        weight = (nxt(target).abs() * prev(target).abs()).sqrt()
        weight = weight / weight.flatten(1).sum(1).clamp(min=self.eps).view(-1, 1, 1)
        return ((1.0 - agree) * weight).flatten(1).sum(1).mean()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``x, y: (B, C, T)`` (prediction, target) -> scalar loss, fp32."""
        _check_pair(x, y)
        total = x.new_zeros((), dtype=torch.float32)
        for i, (n_fft, hop) in enumerate(zip(self.n_ffts, self.hops, strict=True)):
            window = getattr(self, f"window_{i}")
            pred = _stft(x, n_fft, hop, window)
            with torch.no_grad():
                target = _stft(y, n_fft, hop, window)
            specs = (pred, target)
            total = total + self._term(*specs, dim=2)
            if self.group_delay > 0:
                total = total + self.group_delay * self._term(*specs, dim=1)
        return total / len(self.n_ffts)


def feature_matching_loss(
    real_features: Sequence[Sequence[Tensor]],
    fake_features: Sequence[Sequence[Tensor]],
    *,
    relative: bool = False,
) -> Tensor:
    """Mean L1 between feature maps of real (detached) and generated audio.

    With ``relative=True`` each map's L1 is divided by the mean ``|real|`` of that map
    (EnCodec, arXiv:2210.13438, eq. 2), so every layer counts alike whatever its scale and the
    loss is O(1) from the first step; plain L1 (HiFi-GAN, MelGAN) is tiny while a young
    weight-normed discriminator's features are small, so its weight then does little.

    Args:
        real_features: per sub-discriminator, its feature maps on real audio.
        fake_features: the same on generated audio.
        relative: normalise each map's L1 by the real map's mean magnitude.

    Returns:
        Scalar, averaged over every feature map of every sub-discriminator.
    """

    def one(fake: Tensor, real: Tensor) -> Tensor:
        real = real.detach()
        loss = F.l1_loss(fake, real)
        if relative:
            loss = loss / real.abs().mean().clamp(min=1e-8)
        return loss

    losses = [
        one(fake, real)
        for reals, fakes in zip(real_features, fake_features, strict=True)
        for real, fake in zip(reals, fakes, strict=True)
    ]
    if not losses:
        raise ValueError("feature_matching_loss needs at least one feature map")
    return torch.stack(losses).mean()


def hinge_discriminator_loss(
    real_logits: Sequence[Tensor], fake_logits: Sequence[Tensor]
) -> Tensor:
    """``mean_d [ mean relu(1 - D(real)) + mean relu(1 + D(fake)) ]``; pass detached fakes."""
    losses = [
        F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        for real, fake in zip(real_logits, fake_logits, strict=True)
    ]
    return torch.stack(losses).mean()


def hinge_generator_loss(fake_logits: Sequence[Tensor]) -> Tensor:
    """``mean_d mean relu(1 - D(fake))``: the generator's adversarial loss."""
    return torch.stack([F.relu(1 - fake).mean() for fake in fake_logits]).mean()
