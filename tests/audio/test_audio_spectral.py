"""The spectral encoder: framing aligned with the iSTFT head, fp32 features, pitch resolved."""

from __future__ import annotations

import math

import pytest
import torch

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.audio.istft import ISTFTHead, framed_log_magnitude
from audiotok.audio.spectral import SpectralEncoder
from audiotok.training.latent_probes import harmonic_ripple


def test_frames_are_centred_on_their_own_hop() -> None:
    # an impulse inside frame t's own samples peaks frame t's energy, not a neighbour's
    enc = SpectralEncoder(hop_length=8, n_fft=32, hidden=8, num_layers=1)
    for t in (0, 3, 7):
        x = torch.zeros(1, 1, 10 * 8)
        x[..., t * 8 + 4] = 1.0
        energy = enc.features(x).exp().square().sum(-1)[0]  # (T',)
        assert int(energy.argmax()) == t


def test_one_framing_for_encoder_head_and_probe() -> None:
    # the encoder's input, the head's spectrum target and the pitch probe read the same
    # frames: torch.stft of the signal padded (n_fft - hop) / 2 on the left
    hop, n_fft = 8, 32
    x = torch.randn(2, 1, 12 * hop)
    left = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(x[:, 0], (left, n_fft - hop - left))
    ref = torch.stft(
        padded, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True
    )
    ref = ref.abs().clamp(min=1e-5).log().transpose(1, 2)  # (B, T', bins)
    assert ref.shape[1] == 12
    torch.testing.assert_close(framed_log_magnitude(x, n_fft, hop)[:, 0], ref)
    enc = SpectralEncoder(hop_length=hop, n_fft=n_fft, hidden=8, num_layers=1)
    torch.testing.assert_close(enc.features(x), ref)
    head = ISTFTHead(8, n_fft=n_fft, hop_length=hop)
    torch.testing.assert_close(head.log_spectrum(x)[:, :, 0], ref)
    assert harmonic_ripple(torch.randn(1, 1, 12 * 320), 320, 24000).shape == (12, 106)  # < 2 kHz


def test_harmonics_are_resolved_at_the_default_size() -> None:
    # 24 kHz, hop 320, n_fft 1280: 18.75 Hz bins; a 150 Hz voice shifted by 6 % moves its
    # 10th harmonic by 5 bins, so the features (and hence the codes) can carry pitch
    sr, enc = 24000, SpectralEncoder(hop_length=320, n_fft=1280, num_layers=1)
    t = torch.arange(sr) / sr

    def peak(f0: float) -> int:
        x = sum(torch.sin(2 * math.pi * f0 * h * t) / h for h in range(1, 11))
        feats = enc.features(x.reshape(1, 1, -1))[0, 30]  # a middle frame
        band = feats[round(9.5 * f0 / 18.75) : round(10.5 * f0 / 18.75)]
        return int(band.argmax()) + round(9.5 * f0 / 18.75)

    assert peak(150.0) == pytest.approx(1500 / 18.75, abs=1)
    assert peak(159.0) - peak(150.0) >= 4


def test_features_stay_fp32_under_bf16_autocast() -> None:
    enc = SpectralEncoder(hop_length=16, n_fft=64, hidden=8, num_layers=1)
    x = torch.randn(2, 1, 16 * 12) * 1e-3
    ref = enc.features(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = enc.features(x)
        latent = enc(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert latent.shape == (2, 128, 12)


def test_stereo_spectra_are_stacked() -> None:
    enc = SpectralEncoder(channels=2, hop_length=8, n_fft=32, hidden=8, num_layers=1)
    x = torch.randn(1, 2, 80)
    feats = enc.features(x)
    assert feats.shape == (1, 10, 2 * 17)
    torch.testing.assert_close(feats[..., :17], enc.features(x[:, :1])[..., :17])
    torch.testing.assert_close(feats[..., 17:], enc.features(x[:, 1:])[..., :17])


def test_context_is_tight() -> None:
    # one frame less context on the right than claimed is not enough: the bound is not loose
    codec = SoundStream(
        SoundStreamConfig(
            ratios=(2, 3),
            encoder="spectral",
            encoder_hidden=8,
            encoder_layers=2,
            encoder_n_fft=24,
            latent_dim=8,
            istft_hidden=8,
            istft_layers=1,
            quantizer={"type": "vq", "codebook_size": 4},
        )
    ).eval()
    hop = codec.hop_length
    left, right = codec.encoder.context()
    assert (left, right) == ((24 - 6) // 2 + 2 * 3 * hop, (24 - 6) // 2 + 2 * 3 * hop)
    x = torch.randn(1, 1, 40 * hop)
    base = codec.encode_latent(x)[..., 10]
    y = x.clone()
    y[..., 11 * hop + right - 1] += 1.0  # the last sample frame 10 still sees
    assert not torch.allclose(codec.encode_latent(y)[..., 10], base)
    z = x.clone()
    z[..., 11 * hop + right :] += 1.0  # nothing it sees
    torch.testing.assert_close(codec.encode_latent(z)[..., 10], base)


@pytest.mark.parametrize("kwargs", [{"causal": True}, {"lstm_layers": 1}, {"encoder_n_fft": 3}])
def test_bad_spectral_configs_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        SoundStreamConfig(ratios=(2, 3), encoder="spectral", **kwargs)


def test_channels_last_discriminator_gives_the_same_outputs() -> None:
    from audiotok.audio.discriminators import MultiScaleSTFTDiscriminator

    torch.manual_seed(0)
    plain = MultiScaleSTFTDiscriminator(n_ffts=(64, 32), filters=4, max_filters=8)
    fast = MultiScaleSTFTDiscriminator(
        n_ffts=(64, 32), filters=4, max_filters=8, channels_last=True
    )
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 800)
    (la, fa), (lb, fb) = plain(x), fast(x)
    assert fb[0][0].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(
        la + [f for fs in fa for f in fs], lb + [f for fs in fb for f in fs], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_spectral_encoder_embed_mlp_starts_as_the_linear_projection() -> None:
    from audiotok.audio.spectral import SpectralEncoder

    torch.manual_seed(0)
    plain = SpectralEncoder(dim=6, hop_length=8, n_fft=32, hidden=12, num_layers=1)
    grown = SpectralEncoder(dim=6, hop_length=8, n_fft=32, hidden=12, num_layers=1, embed_hidden=20)
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("embed_mlp.") for k in missing)
    wav = torch.randn(2, 1, 8 * 9)
    torch.testing.assert_close(grown(wav), plain(wav), rtol=0, atol=0)
    grown(wav).square().sum().backward()  # and the branch learns from there
    assert grown.embed_mlp[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="embed_hidden"):
        SpectralEncoder(embed_hidden=-1)


@pytest.mark.parametrize(
    "bad",
    [
        {"encoder": "seanet", "encoder_embed_hidden": 8},
        {"encoder": "spectral", "decoder": "seanet", "istft_head_hidden": 8},
    ],
)
def test_mlp_widths_need_the_parts_they_widen(bad: dict) -> None:
    from audiotok.audio.soundstream import SoundStreamConfig

    with pytest.raises(ValueError, match="applies to"):
        SoundStreamConfig(**bad)
