"""Golden tensors: a seeded tiny model of each family on a fixed input gives recorded values.

The quantizer is the identity so these pin the audio code only (encoders, decoders, padding,
init order); the quantizers are pinned by their own tests. If a change here is intended,
re-record the constants and say why in the commit message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from audiotok.audio import AudioCodec, AudioVQVAE, AudioVQVAEConfig, SoundStream, SoundStreamConfig

IDENTITY = {"type": "identity"}
TINY_SOUNDSTREAM = {
    "ratios": (2, 3),
    "encoder_channels": 4,
    "dilations": (1, 3),
    "latent_dim": 8,
    "decoder_channels": 4,
    "istft_hidden": 16,
    "istft_layers": 2,
    "quantizer": IDENTITY,
}

GOLDEN: dict[str, tuple[Callable[[], AudioCodec], list[float], float]] = {
    "soundstream-seanet": (
        lambda: SoundStream(SoundStreamConfig(decoder="seanet", **TINY_SOUNDSTREAM)),
        [-0.174362, -0.152918, -0.172592, -0.17009, -0.150113, -0.171365],
        25.44296,
    ),
    "soundstream-istft": (
        lambda: SoundStream(SoundStreamConfig(decoder="istft", **TINY_SOUNDSTREAM)),
        [0.230452, -0.009762, 0.167588, 0.082983, -0.029266, 0.126237],
        10.48169,
    ),
    "audio_vqvae": (
        lambda: AudioVQVAE(
            AudioVQVAEConfig(
                ratios=(2, 2),
                hidden=8,
                residual_hidden=4,
                num_residual=1,
                latent_dim=4,
                quantizer=IDENTITY,
            )
        ),
        [-0.120223, -0.136295, -0.136196, -0.136232, -0.13632, -0.136161],
        11.31397,
    ),
}


def _input() -> torch.Tensor:
    t = torch.arange(96, dtype=torch.float32) / 24000
    wav = 0.5 * torch.sin(2 * torch.pi * 1000 * t) + 0.1 * torch.cos(2 * torch.pi * 3100 * t)
    return wav.reshape(1, 1, -1)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_output(name: str) -> None:
    build, values, abs_sum = GOLDEN[name]
    torch.manual_seed(1234)
    codec = build().eval()
    with torch.no_grad():
        audio = codec(_input()).audio
    assert audio.shape == (1, 1, 96)
    torch.testing.assert_close(audio[0, 0, ::16], torch.tensor(values), rtol=1e-4, atol=2e-5)
    assert audio.abs().sum().item() == pytest.approx(abs_sum, rel=1e-4)
