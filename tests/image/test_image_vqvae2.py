"""VQ-VAE-2: both levels round-trip, packed codes layout, padding and gradients."""

from __future__ import annotations

import pytest
import torch
from tiny_image_models import tiny_vqvae2

from audiotok.image import ImageVQVAE2, ImageVQVAE2Config


def _warm_model(x: torch.Tensor) -> ImageVQVAE2:
    model = tiny_vqvae2(channels=x.shape[1])
    model.train()(x)  # k-means init of the EMA codebooks
    return model.eval()


def test_both_levels_round_trip_in_eval() -> None:
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    model = _warm_model(x)
    out = model(x)
    top, bottom = model.encode_levels(x)
    assert top.shape == (2, 1, 2, 3) and bottom.shape == (2, 2, 4, 6)
    assert model.num_codebooks == 1 + 4 * 2 and out.codes.shape == (2, 9, 2, 3)
    assert torch.equal(model.encode(x), out.codes)
    torch.testing.assert_close(model.decode_levels(top, bottom, size=(16, 24)), out.image)
    torch.testing.assert_close(model.decode(out.codes, size=(16, 24)), out.image)


def test_packed_layout_is_top_then_bottom_space_to_depth() -> None:
    model = tiny_vqvae2()
    top = torch.randint(0, 16, (2, 1, 3, 2))
    bottom = torch.randint(0, 16, (2, 2, 6, 4))
    packed = model.pack_codes(top, bottom)
    assert packed.shape == (2, 1 + 8, 3, 2)
    assert torch.equal(packed[:, :1], top)
    k, p, q, i, j = 1, 1, 0, 2, 1
    assert torch.equal(packed[:, 1 + (k * 2 + p) * 2 + q, i, j], bottom[:, k, i * 2 + p, j * 2 + q])
    again = model.unpack_codes(packed)
    assert torch.equal(again.top, top) and torch.equal(again.bottom, bottom)
    with pytest.raises(ValueError, match="2x the top grid"):
        model.pack_codes(top, bottom[..., :3])


def test_odd_sizes_are_padded_to_the_top_grid_and_cropped() -> None:
    x = torch.randn(1, 1, 13, 9)
    model = _warm_model(torch.randn(2, 1, 16, 16))
    out = model(x)
    assert out.image.shape == x.shape and out.codes.shape[-2:] == (2, 2)
    assert model.latent_shape(13, 9) == (2, 2) and model.bottom_downsample_factor == 4


def test_gradients_reach_both_encoders_and_are_finite() -> None:
    model = tiny_vqvae2().train()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = model(x)
    (torch.nn.functional.l1_loss(out.image, x) + out.loss).backward()
    for enc in (model.encoder_bottom, model.encoder_top):
        grad = enc.layers[0].weight.grad
        assert grad is not None and grad.abs().sum() > 0 and torch.isfinite(grad).all()
    assert {"top/perplexity", "bottom/perplexity"} <= set(out.metrics)


def test_contract_errors() -> None:
    model = tiny_vqvae2().eval()
    with pytest.raises(ValueError, match="needs all"):
        model.encode(torch.randn(1, 3, 8, 8), num_codebooks=1)
    with pytest.raises(ValueError, match="codebook_size"):
        ImageVQVAE2(
            ImageVQVAE2Config(
                hidden=8,
                latent_dim=8,
                quantizer={"type": "vq", "codebook_size": 16},
                top_quantizer={"type": "vq", "codebook_size": 32},
            )
        )
    with pytest.raises(ValueError, match="at least one entry"):
        ImageVQVAE2Config(top_channel_mult=())
