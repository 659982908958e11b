"""The image codec contract, parametrised over every quantizer variant of issue 13."""

from __future__ import annotations

import pytest
import torch
from tiny_image_models import NUM_CODEBOOKS, SPECS, tiny_vqvae

from audiotok.image import ImageVQVAE

VARIANTS = sorted(SPECS)


def _warm(model: ImageVQVAE, x: torch.Tensor) -> ImageVQVAE:
    # one training forward initialises data-dependent codebooks (k-means), then eval
    model.train()(x)
    return model.eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_eval_decode_of_encode_equals_forward(variant: str) -> None:
    x = torch.rand(2, 3, 16, 12) * 2 - 1
    model = _warm(tiny_vqvae(variant), x)
    out = model(x)
    codes = model.encode(x)
    assert torch.equal(codes, out.codes)
    torch.testing.assert_close(model.decode(codes, size=(16, 12)), out.image, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_codes_layout_and_range(variant: str) -> None:
    model = tiny_vqvae(variant).eval()
    codes = model.encode(torch.randn(3, 3, 16, 20))
    k = NUM_CODEBOOKS[variant]
    assert model.num_codebooks == k
    assert codes.shape == (3, k, 4, 5) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < model.codebook_size
    assert model.latent_shape(16, 20) == (4, 5)
    assert model.bits_per_image(16, 20) == pytest.approx(
        20 * k * torch.log2(torch.tensor(float(model.codebook_size))).item()
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_random_sizes_are_padded_and_cropped_back(variant: str) -> None:
    model = _warm(tiny_vqvae(variant, channels=1), torch.randn(4, 1, 8, 8))
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        h, w = (int(v) for v in torch.randint(1, 23, (2,), generator=gen))
        x = torch.randn(2, 1, h, w, generator=gen)
        out = model(x)
        assert out.image.shape == x.shape
        assert out.codes.shape[-2:] == model.latent_shape(h, w) == (-(-h // 4), -(-w // 4))
        full = model.decode(model.encode(x))
        assert full.shape[-2:] == (out.codes.shape[-2] * 4, out.codes.shape[-1] * 4)
        torch.testing.assert_close(full[..., :h, :w], out.image, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_straight_through_gradient_reaches_encoder(variant: str) -> None:
    model = tiny_vqvae(variant).train()
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    out = model(x)
    (torch.nn.functional.mse_loss(out.image, x) + out.loss).backward()
    first = model.encoder.layers[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    assert torch.isfinite(out.loss)


def test_partial_codebooks_of_a_residual_model() -> None:
    model = tiny_vqvae("residual").eval()
    x = torch.randn(1, 3, 8, 8)
    full = model.encode(x)
    assert torch.equal(model.encode(x, num_codebooks=2), full[:, :2])
    assert model.decode(full[:, :1]).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="needs all"):
        tiny_vqvae("product").encode(x, num_codebooks=1)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.zeros(1, 3, 8, 8, dtype=torch.long), "float"),
        (torch.zeros(3, 8, 8), "shape"),
        (torch.zeros(1, 1, 8, 8), "shape"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
    ],
)
def test_bad_images_are_refused(bad: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_vqvae("fsq").encode(bad)


def test_bad_codes_are_refused() -> None:
    model = tiny_vqvae("ema").eval()
    with pytest.raises(ValueError, match="out of range"):
        model.decode(torch.full((1, 1, 2, 2), 16))
    with pytest.raises(ValueError, match="integer"):
        model.decode(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        model.decode(torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="does not match"):
        model.decode(torch.zeros(1, 1, 2, 2, dtype=torch.long), size=(13, 8))


def test_tokenizer_properties() -> None:
    model = tiny_vqvae("ema", channels=1, channel_mult=(1, 1, 2, 2))
    assert model.modality == "image" and model.family == "image_vqvae"
    assert model.channels == 1 and model.downsample_factor == 16 and model.codebook_size == 16
    assert model.last_layer is model.decoder.conv_out.weight
