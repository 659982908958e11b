"""ImageTokenizer: the image protocol, decode(encode(x)) == the model's forward, any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_image_models import NUM_CODEBOOKS, tiny_vqvae, tiny_vqvae2

from audiotok.errors import UserError
from audiotok.tokenizer import ImageTokenizer, ImageTokenizerProtocol, Tokenizer
from audiotok.tokenizer.image import images_to_pixels, pixels_to_images


def _tok(variant: str = "ema", channels: int = 3, **kw: object) -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer(tiny_vqvae(variant, channels=channels), **kw)  # type: ignore[arg-type]


def _tok2() -> ImageTokenizer:
    torch.manual_seed(0)
    return ImageTokenizer(tiny_vqvae2())


def test_satisfies_the_image_protocol() -> None:
    tok = _tok()
    assert isinstance(tok, ImageTokenizerProtocol) and isinstance(tok, Tokenizer)
    assert tok.modality == "image" and tok.channels == 3 and tok.downsample_factor == 4
    assert tok.vocab_size == tok.num_codebooks * tok.codebook_size == 16
    assert tok.latent_shape(28, 30) == (7, 8)
    assert tok.bits_per_image(28, 28) == 49 * 4
    assert len(tok.model_id) == 12 and tok.levels is None


@pytest.mark.parametrize("variant", ["ema", "residual", "product", "fsq", "vq_lowdim_l2"])
def test_decode_of_encode_is_the_models_eval_forward(variant: str) -> None:
    tok = _tok(variant, batch_size=2)  # batches split: the codes must not change
    x = torch.rand(5, 3, 13, 18) * 2 - 1
    codes = tok.encode(x)
    assert codes.dtype == torch.long and codes.shape == (5, NUM_CODEBOOKS[variant], 4, 5)
    assert 0 <= int(codes.min()) and int(codes.max()) < tok.codebook_size
    with torch.no_grad():
        ref = tok.model(x)
    assert torch.equal(codes, ref.codes)
    assert torch.allclose(tok.decode(codes, size=(13, 18)), ref.image, atol=1e-5)


def test_vqvae2_packed_codes_and_levels() -> None:
    tok = _tok2()
    x = torch.rand(2, 3, 17, 9) * 2 - 1
    codes = tok.encode(x)
    levels = tok.levels
    assert levels is not None
    assert codes.shape == (2, levels["top"]["rows"] + levels["bottom"]["rows"], 3, 2)
    top, bottom = tok.encode_levels(x)
    assert top.shape == (2, 1, 3, 2) and bottom.shape == (2, 2, 6, 4)
    with torch.no_grad():
        ref = tok.model(x)
    assert torch.allclose(tok.decode_levels(top, bottom, size=(17, 9)), ref.image, atol=1e-5)
    assert torch.allclose(tok.decode(codes, size=(17, 9)), ref.image, atol=1e-5)
    with pytest.raises(UserError, match="one level"):
        _tok().encode_levels(x)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 23), w=st.integers(1, 23), b=st.integers(1, 3), grey=st.booleans())
def test_any_size_round_trips(h: int, w: int, b: int, grey: bool) -> None:
    tok = _tok(channels=1 if grey else 3)
    x = torch.rand(b, tok.channels, h, w) * 2 - 1
    codes = tok.encode(x)
    assert codes.shape[-2:] == tok.latent_shape(h, w) == (-(-h // 4), -(-w // 4))
    out = tok.decode(codes, size=(h, w))
    assert out.shape == x.shape
    full = tok.decode(codes)
    assert full.shape[-2:] == (codes.shape[-2] * 4, codes.shape[-1] * 4)
    assert torch.allclose(full[..., :h, :w], out)
    # codes of the decoded image are valid input again, and numpy input works the same
    assert torch.equal(tok.encode(x.numpy()), codes)


def test_pixel_helpers_round_trip() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    images = pixels_to_images(pixels)
    assert images.shape == (2, 3, 5, 6) and float(images.min()) >= -1 and float(images.max()) <= 1
    assert np.array_equal(images_to_pixels(images), pixels)


def test_bad_input_is_one_line() -> None:
    tok = _tok()
    bad = [
        lambda: tok.encode(torch.zeros(1, 1, 8, 8)),  # channels
        lambda: tok.encode(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)),  # dtype
        lambda: tok.encode(torch.full((1, 3, 8, 8), float("nan"))),
        lambda: tok.encode(torch.zeros(1, 3, 0, 8)),
        lambda: tok.decode(torch.full((1, 1, 2, 2), 16)),  # out of range
        lambda: tok.decode(torch.full((1, 1, 2, 2), -1)),
        lambda: tok.decode(torch.zeros(1, 2, 2, 2, dtype=torch.long)),  # too many rows
        lambda: tok.decode(torch.zeros(1, 1, 2, 2, dtype=torch.long), size=(20, 8)),
        lambda: tok.decode(torch.zeros(2, 2, dtype=torch.long)),
        lambda: tok.decode(torch.zeros(1, 1, 2, 2)),  # float codes
        lambda: ImageTokenizer(torch.nn.Linear(1, 1)),
    ]
    for call in bad:
        with pytest.raises(UserError) as info:
            call()
        assert "\n" not in str(info.value)


def test_residual_prefix_of_codebooks() -> None:
    tok = _tok("residual")
    product = _tok("product")  # K = 2 codebooks over channel groups: both needed
    assert tok.supports_partial_codebooks and not product.supports_partial_codebooks
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    full = tok.encode(x)
    first = tok.encode(x, num_codebooks=1)
    assert first.shape == (2, 1, 2, 2) and torch.equal(first, full[:, :1])
    assert tok.decode(first, size=(8, 8)).shape == (2, 3, 8, 8)
    with pytest.raises(UserError):
        product.encode(x, num_codebooks=1)
