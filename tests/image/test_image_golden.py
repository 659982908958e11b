"""Golden tensors: a seeded tiny model of each image family on a fixed input gives recorded values.

The quantizer is the identity, so these pin the image code only (encoders, decoders,
attention, padding, init order); quantizers are pinned by their own tests. If a change here
is intended, re-record the constants and say why in the commit message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from audiotok.image import ImageCodec, ImageVQVAE, ImageVQVAE2, ImageVQVAE2Config, ImageVQVAEConfig

IDENTITY = {"type": "identity"}
TINY = {"hidden": 8, "num_res_blocks": 1, "res_hidden": 4, "attention": True, "latent_dim": 4}

GOLDEN: dict[str, tuple[Callable[[], ImageCodec], list[float], float]] = {
    "image_vqvae": (
        lambda: ImageVQVAE(ImageVQVAEConfig(channel_mult=(1, 2), quantizer=IDENTITY, **TINY)),
        [-0.10877, 0.26395, -0.21171, -0.138439, 0.618799, 0.0872, -0.441198],
        197.78383,
    ),
    "image_vqvae2": (
        lambda: ImageVQVAE2(ImageVQVAE2Config(quantizer=IDENTITY, **TINY)),
        [-0.109013, -0.235741, -0.288583, -0.862163, 0.531063, -0.362263, 0.747797],
        204.12514,
    ),
}


def _input() -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(13.0), torch.arange(15.0), indexing="ij")
    rgb = [torch.sin(0.5 * x), torch.cos(0.3 * y), torch.sin(0.2 * (x + y))]
    return torch.stack(rgb).unsqueeze(0)  # (1, 3, 13, 15), odd sizes: padding is pinned too


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_output(name: str) -> None:
    build, values, abs_sum = GOLDEN[name]
    torch.manual_seed(1234)
    codec = build().eval()
    with torch.no_grad():
        image = codec(_input()).image
    assert image.shape == (1, 3, 13, 15)
    torch.testing.assert_close(image.flatten()[::97], torch.tensor(values), rtol=1e-4, atol=2e-5)
    assert image.abs().sum().item() == pytest.approx(abs_sum, rel=1e-4)
