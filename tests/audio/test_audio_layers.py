"""Padded convs, Snake, receptive-field arithmetic and the "same"-padded inverse STFT."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audiotok.audio.istft import ISTFTDecoder, ISTFTHead
from audiotok.audio.layers import (
    PaddedConv1d,
    PaddedConvTranspose1d,
    ResidualUnit,
    Snake,
    conv_context,
    make_activation,
    pad1d,
)
from audiotok.audio.seanet import SEANetDecoder, SEANetEncoder


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("stride,kernel,dilation", [(1, 7, 1), (1, 3, 9), (4, 8, 1), (5, 10, 1)])
def test_conv_lengths(causal: bool, stride: int, kernel: int, dilation: int) -> None:
    conv = PaddedConv1d(2, 3, kernel, stride=stride, dilation=dilation, causal=causal)
    for frames in (1, 2, 7):
        assert conv(torch.randn(1, 2, frames * stride)).shape == (1, 3, frames)
    up = PaddedConvTranspose1d(3, 2, 2 * stride, stride=stride, causal=causal)
    assert up(torch.randn(1, 3, 5)).shape == (1, 2, 5 * stride)


def test_reflect_padding_handles_inputs_shorter_than_the_pad() -> None:
    x = torch.arange(3.0).reshape(1, 1, 3)
    y = pad1d(x, 5, 4, "reflect")
    assert y.shape == (1, 1, 12)
    torch.testing.assert_close(y[..., 5:8], x)
    assert PaddedConv1d(1, 1, 15)(torch.randn(1, 1, 2)).shape == (1, 1, 2)


def test_causal_conv_and_transposed_conv_do_not_look_ahead() -> None:
    net = nn.Sequential(
        PaddedConv1d(1, 4, 8, stride=4, causal=True),
        ResidualUnit(4, dilation=3, causal=True, weight_norm=True),
        PaddedConvTranspose1d(4, 1, 8, stride=4, causal=True),
    )
    x = torch.randn(1, 1, 64)
    y = x.clone()
    y[..., 40:] = torch.randn(24)
    torch.testing.assert_close(net(x)[..., :40], net(y)[..., :40])
    assert not torch.allclose(net(x)[..., 40:], net(y)[..., 40:])


def test_conv_context_matches_perturbation() -> None:
    torch.manual_seed(0)
    enc = SEANetEncoder(
        channels=1, dim=4, n_filters=2, ratios=(2, 3), dilations=(1, 3), pad_mode="constant"
    ).eval()
    left, right = enc.context()
    hop = enc.hop_length
    x = torch.zeros(1, 1, 40 * hop)
    frame = 20
    base = enc(x)[..., frame]
    # a sample just inside the context changes the frame, one just outside does not
    for offset, changes in ((-left, True), (-left - 1, False)):
        y = x.clone()
        y[..., frame * hop + offset] = 1.0
        assert (not torch.equal(enc(y)[..., frame], base)) == changes
    for offset, changes in ((hop - 1 + right, True), (hop + right, False)):
        y = x.clone()
        y[..., frame * hop + offset] = 1.0
        assert (not torch.equal(enc(y)[..., frame], base)) == changes
    causal = SEANetEncoder(channels=1, dim=4, n_filters=2, ratios=(2, 3), causal=True)
    assert causal.context()[1] == 0 and causal.context()[0] > 0
    assert conv_context([PaddedConv1d(1, 1, 1)]) == (0, 0)


def test_seanet_shapes_and_ratios_order() -> None:
    enc = SEANetEncoder(channels=2, dim=5, n_filters=2, ratios=(2, 5), dilations=(1,))
    dec = SEANetDecoder(
        channels=2, dim=5, n_filters=2, ratios=(2, 5), dilations=(1,), lstm_layers=1
    )
    z = enc(torch.randn(3, 2, 40))
    assert z.shape == (3, 5, 4)
    assert dec(z).shape == (3, 2, 40)


def test_snake_matches_formula_and_activation_names() -> None:
    snake = Snake(3)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([0.5, 1.0, 2.0]).reshape(1, 3, 1))
    x = torch.linspace(-3, 3, 7).expand(1, 3, 7)
    alpha = snake.alpha
    torch.testing.assert_close(snake(x), x + torch.sin(alpha * x) ** 2 / alpha)
    assert isinstance(make_activation("elu", 3), nn.ELU)
    with pytest.raises(ValueError, match="unknown activation"):
        make_activation("swish", 3)


def _same_stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Forward STFT with the framing the ISTFT head inverts: ``(N, T)`` -> ``(N, F, T / hop)``."""
    left = (n_fft - hop) // 2
    padded = F.pad(x, (left, n_fft - hop - left))
    frames = padded.unfold(-1, n_fft, hop) * torch.hann_window(n_fft)  # (N, T', n_fft)
    return torch.fft.rfft(frames, dim=-1).transpose(1, 2)


@pytest.mark.parametrize("n_fft,hop", [(24, 6), (20, 5), (16, 8)])
def test_same_istft_inverts_the_matching_stft(n_fft: int, hop: int) -> None:
    head = ISTFTHead(4, hop_length=hop, n_fft=n_fft)
    x = torch.randn(2, 11 * hop)
    spec = _same_stft(x, n_fft, hop)
    assert spec.shape == (2, n_fft // 2 + 1, 11)
    torch.testing.assert_close(head.istft(spec), x, rtol=1e-4, atol=1e-4)


def test_istft_decoder_output_length_and_validation() -> None:
    dec = ISTFTDecoder(dim=4, channels=2, hop_length=5, hidden=8, num_layers=1)
    assert dec(torch.randn(3, 4, 7)).shape == (3, 2, 35)
    with pytest.raises(ValueError):
        ISTFTHead(4, hop_length=8, n_fft=4)
    with pytest.raises(ValueError):
        ISTFTDecoder(dim=4, kernel_size=4)


def test_istft_head_mlp_starts_as_the_linear_head_and_lifts_its_rank_limit() -> None:
    torch.manual_seed(0)
    linear = ISTFTHead(2, hop_length=4, n_fft=16)  # 9 bins from 2 features
    grown = ISTFTHead(2, hop_length=4, n_fft=16, mlp_hidden=64)
    grown.proj.load_state_dict(linear.proj.state_dict())
    x = torch.randn(3, 5, 2)
    # the MLP's output layer starts at zero: growing a trained head changes nothing
    torch.testing.assert_close(grown(x), linear(x), rtol=0, atol=0)

    # five frames whose log-magnitudes span 5 dimensions: a linear head from 2 features
    # reaches at most a 3-dimensional (affine) set of them, the MLP all of them
    inputs = torch.randn(1, 5, 2)
    target = 3.0 * torch.randn(1, 5, 1, 9)

    def fit(head: ISTFTHead) -> float:
        opt = torch.optim.Adam(head.parameters(), lr=1e-2)
        for _ in range(1500):
            loss = (head.spectrum(inputs)[0] - target).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    floor = target - target.mean(1, keepdim=True)  # what a rank-deficient fit must leave
    assert fit(linear) > 0.1 * float(floor.square().mean())
    assert fit(grown) < 1e-3
    with pytest.raises(ValueError, match="mlp_hidden"):
        ISTFTHead(4, mlp_hidden=-1)


@pytest.mark.parametrize("n_fft,hop", [(24, 6), (20, 5)])
def test_head_log_spectrum_is_what_the_head_must_predict(n_fft: int, hop: int) -> None:
    head = ISTFTHead(4, hop_length=hop, n_fft=n_fft)
    wav = torch.randn(2, 1, 9 * hop)
    log_mag = head.log_spectrum(wav)
    assert log_mag.shape == (2, 9, 1, n_fft // 2 + 1)
    phase = _same_stft(wav[:, 0], n_fft, hop).angle().transpose(1, 2)[:, :, None]
    torch.testing.assert_close(head.synthesize(log_mag, phase), wav, rtol=1e-4, atol=1e-4)
    dec = ISTFTDecoder(dim=4, hop_length=hop, n_fft=n_fft, hidden=8, num_layers=1)
    latent = torch.randn(2, 4, 9)
    audio, spectrum = dec.forward_with_spectrum(latent)
    torch.testing.assert_close(audio, dec(latent))
    assert spectrum.shape == log_mag.shape
