"""Discriminators and training losses: shapes, finite gradients and the expected orderings."""

from __future__ import annotations

import math

import pytest
import torch

from audiotok.audio import (
    MultiPeriodDiscriminator,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    MultiScaleSTFTDiscriminator,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)


@pytest.fixture(scope="module")
def mel_loss() -> MultiScaleMelLoss:
    return MultiScaleMelLoss(16000, n_ffts=(64, 256), n_mels=(10, 40))


def _discriminators(channels: int) -> list[torch.nn.Module]:
    return [
        MultiScaleSTFTDiscriminator(n_ffts=(64, 128), channels=channels, filters=4, max_filters=8),
        MultiPeriodDiscriminator(
            periods=(2, 3, 5), channels=channels, filters=2, max_filters=8, num_layers=2
        ),
    ]


@pytest.mark.parametrize("channels", [1, 2])
def test_discriminators_outputs_and_finite_gradients(channels: int) -> None:
    for disc in _discriminators(channels):
        real = torch.randn(2, channels, 301)
        fake = torch.randn(2, channels, 301, requires_grad=True)
        logits_r, feats_r = disc(real)
        logits_f, feats_f = disc(fake)
        assert len(logits_f) == len(feats_f) == len(disc.discriminators)
        assert all(lg.shape[0] == 2 and lg.shape[1] == 1 for lg in logits_f)
        assert all(len(f) >= 2 for f in feats_f)
        gen = hinge_generator_loss(logits_f) + feature_matching_loss(feats_r, feats_f)
        gen.backward()
        assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
        d_loss = hinge_discriminator_loss(logits_r, [lg.detach() for lg in logits_f])
        d_loss.backward()
        grads = [p.grad for p in disc.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_hinge_losses_values() -> None:
    real = [torch.full((2, 1, 3), 2.0), torch.full((2, 1, 5), 0.5)]
    fake = [torch.full((2, 1, 3), -2.0), torch.full((2, 1, 5), 0.0)]
    # disc 1 is perfectly separated (0); disc 2: relu(1 - 0.5) + relu(1 + 0) = 1.5
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.75)
    assert hinge_generator_loss(fake).item() == pytest.approx((3.0 + 1.0) / 2)
    same = [[torch.ones(2, 3)], [torch.zeros(4)]]
    assert feature_matching_loss(same, same).item() == 0.0
    shifted = [[torch.ones(2, 3) + 0.5], [torch.zeros(4) - 0.5]]
    assert feature_matching_loss(same, shifted).item() == pytest.approx(0.5)
    # relative: each map's L1 over its real mean |x|; a scaled copy of the features gives
    # the same value, and the all-zero map (mean 0) is guarded, not divided by zero
    real = [[torch.full((2, 3), 2.0)], [torch.full((4,), 0.5)]]
    fake = [[torch.full((2, 3), 3.0)], [torch.full((4,), 0.25)]]
    rel = feature_matching_loss(real, fake, relative=True).item()
    assert rel == pytest.approx((1.0 / 2.0 + 0.25 / 0.5) / 2)
    scaled = feature_matching_loss(
        [[10 * t for t in r] for r in real], [[10 * t for t in f] for f in fake], relative=True
    )
    assert scaled.item() == pytest.approx(rel)
    assert torch.isfinite(feature_matching_loss(same, shifted, relative=True))


@pytest.mark.parametrize("which", ["mel", "stft"])
def test_reconstruction_losses_zero_then_grow_with_noise(which: str, mel_loss) -> None:
    loss = mel_loss if which == "mel" else MultiResolutionSTFTLoss(n_ffts=(64, 256))
    t = torch.arange(4000) / 16000
    target = (0.5 * torch.sin(2 * torch.pi * 440 * t)).reshape(1, 1, -1).repeat(2, 2, 1)
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(target.shape, generator=gen)
    values = [loss(target + s * noise, target).item() for s in (1e-3, 1e-2, 1e-1, 1.0)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


@pytest.mark.parametrize("which", ["mel", "stft"])
def test_reconstruction_losses_have_finite_gradients(which: str, mel_loss) -> None:
    loss = mel_loss if which == "mel" else MultiResolutionSTFTLoss(n_ffts=(64, 256))
    target = torch.randn(2, 1, 500)
    for x in (target.clone(), torch.zeros(2, 1, 500), torch.randn(2, 1, 500)):
        x.requires_grad_(True)
        loss(x, target).backward()
        assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError):
        loss(torch.zeros(1, 1, 10), torch.zeros(1, 1, 11))


def test_mel_loss_buffers_are_built_once_and_not_saved(mel_loss) -> None:
    assert mel_loss.mel_0.shape == (10, 33) and mel_loss.mel_1.shape == (40, 129)
    assert mel_loss.window_1.shape == (256,)
    assert mel_loss.state_dict() == {}
    with pytest.raises(ValueError):
        MultiScaleMelLoss(16000, n_ffts=(64, 128), n_mels=(10,))


def _harmonic_tone(f0: float, shift: int = 0, sr: int = 24000) -> torch.Tensor:
    t = (torch.arange(sr, dtype=torch.float64) + shift) / sr
    wav = sum(torch.sin(2 * math.pi * f0 * h * t + h) / h for h in range(1, 8))
    return wav.float()[None, None]


def test_phase_derivative_loss_measures_pitch_error() -> None:
    from audiotok.audio.losses import PhaseDerivativeLoss

    loss = PhaseDerivativeLoss()
    ref = _harmonic_tone(170.0)
    assert float(loss(ref, ref)) < 1e-3
    # the further the pitch is off, the larger the loss, up to ~1 (unrelated phases)
    errors = [float(loss(_harmonic_tone(f), ref)) for f in (170.5, 171.0, 172.0, 174.0)]
    assert errors == sorted(errors) and errors[0] > 0.01 and errors[-1] > 0.3
    noise = 0.3 * torch.randn(1, 1, 24000, generator=torch.Generator().manual_seed(0))
    assert float(loss(noise, ref)) > 0.5
    # the instantaneous-frequency term does not care where the tone starts
    shifted = _harmonic_tone(170.0, shift=37)
    iaf = float(loss(shifted, ref))
    assert iaf < 5e-3
    # the group delay does: 37 samples turn each bin's phase step by 2 pi 37 / n_fft
    assert float(PhaseDerivativeLoss(group_delay=1.0)(shifted, ref)) > iaf + 2e-3
    # silence: a finite loss and gradient
    zeros = torch.zeros(1, 1, 24000, requires_grad=True)
    value = loss(zeros, ref)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(zeros.grad).all()


def test_phase_derivative_loss_gradient_pulls_towards_the_target() -> None:
    from audiotok.audio.losses import PhaseDerivativeLoss

    gen = torch.Generator().manual_seed(0)
    loss = PhaseDerivativeLoss(n_ffts=(256, 128))
    t = torch.arange(4800) / 16000
    ref = (0.4 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(4800, generator=gen))[
        None, None
    ]
    x = (0.1 * torch.randn(1, 1, 4800, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([x], lr=3e-3)
    values = []
    for _ in range(60):
        value = loss(x, ref)
        opt.zero_grad()
        value.backward()
        opt.step()
        values.append(float(value.detach()))
    assert values[-1] < 0.5 * values[0]
