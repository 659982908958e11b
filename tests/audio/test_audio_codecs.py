"""Codec invariants for every tiny family variant: lengths, round trips, partial codebooks,
causality, receptive field, gradients and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_codecs import tiny_soundstream, tiny_vqvae

from audiotok.audio import AudioCodec, CodecOutput


def test_output_length_matches_input_for_random_lengths(codec: AudioCodec) -> None:
    gen = torch.Generator().manual_seed(1)
    lengths = [1, codec.hop_length, codec.hop_length + 1] + torch.randint(
        2, 120, (5,), generator=gen
    ).tolist()
    for mode in ("train", "eval"):
        codec.train(mode == "train")
        for length in lengths:
            x = torch.randn(2, codec.channels, length, generator=gen)
            out = codec(x)
            frames = math.ceil(length / codec.hop_length)
            assert isinstance(out, CodecOutput)
            assert out.audio.shape == x.shape
            assert out.codes.shape == (2, codec.num_codebooks, frames)
            assert out.codes.dtype == torch.long
            assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    codec.eval()
    codes = codec.encode(torch.randn(1, codec.channels, 37))
    assert codes.shape == (1, codec.num_codebooks, math.ceil(37 / codec.hop_length))
    assert codec.decode(codes).shape == (1, codec.channels, codes.shape[-1] * codec.hop_length)


def test_decode_of_encode_equals_eval_forward(codec: AudioCodec) -> None:
    x = torch.randn(2, codec.channels, 53)
    out = codec(x)
    codes = codec.encode(x)
    torch.testing.assert_close(codes, out.codes, rtol=0, atol=0)
    audio = codec.decode(codes)
    assert audio.shape[-1] == codes.shape[-1] * codec.hop_length
    torch.testing.assert_close(audio[..., :53], out.audio, rtol=1e-4, atol=1e-5)


def test_fewer_codebooks_are_a_prefix_of_the_full_codes() -> None:
    codec = tiny_soundstream("seanet").eval()
    x = torch.randn(2, 1, 47)
    full = codec.encode(x)
    assert codec.num_codebooks == 3
    for k in range(1, 4):
        codes = codec.encode(x, num_codebooks=k)
        torch.testing.assert_close(codes, full[:, :k], rtol=0, atol=0)
        assert torch.equal(codec.encode(x, num_codebooks=np.int64(k)), codes)
        out = codec(x, num_codebooks=k)
        assert out.codes.shape[1] == k
        # one encoding decoded at every rate (validation's mel@k) is the same forward
        latent = codec.encode_latent(codec._pad(x))
        again = codec.forward_latent(latent, 47, k)
        assert torch.equal(again.codes, out.codes) and torch.equal(again.audio, out.audio)
        torch.testing.assert_close(codec.decode(codes)[..., :47], out.audio, rtol=1e-4, atol=1e-5)
    # more codebooks reconstruct the latent better
    z = codec.encode_latent(codec._pad(x)).transpose(1, 2)
    errors = [
        (codec.quantizer.decode(full[:, :k].transpose(1, 2)) - z).square().mean() for k in (1, 3)
    ]
    assert errors[1] < errors[0]


@pytest.mark.parametrize(
    "build",
    [
        lambda: tiny_soundstream("seanet", causal=True),
        lambda: tiny_soundstream("istft", causal=True),
        lambda: tiny_vqvae(causal=True),
    ],
    ids=["soundstream-seanet", "soundstream-istft", "vqvae"],
)
def test_causal_codes_and_audio_ignore_the_future(build) -> None:
    codec = build().eval()
    hop = codec.hop_length
    x = torch.randn(1, 1, 20 * hop)
    for t in (7 * hop, 7 * hop + 1, 11 * hop - 1):
        y = x.clone()
        y[..., t:] = torch.randn(1, 1, y.shape[-1] - t)
        done = t // hop  # frames whose samples all precede t
        cx, cy = codec.encode(x), codec.encode(y)
        torch.testing.assert_close(cx[..., :done], cy[..., :done], rtol=0, atol=0)
        lx = codec.encode_latent(x)
        ly = codec.encode_latent(y)
        torch.testing.assert_close(lx[..., :done], ly[..., :done])
        assert not torch.allclose(lx[..., done:], ly[..., done:])
    if getattr(codec.config, "decoder", "seanet") == "seanet":
        y = x.clone()
        y[..., 9 * hop :] = 0.0
        ax, ay = codec(x).audio, codec(y).audio
        torch.testing.assert_close(ax[..., : 9 * hop], ay[..., : 9 * hop])


def test_non_causal_model_looks_ahead() -> None:
    # the negative control of the causality test: a non-causal encoder does see the future
    codec = tiny_soundstream("seanet").eval()
    x = torch.randn(1, 1, 120)
    y = x.clone()
    y[..., 60:] = 0.0
    assert not torch.allclose(codec.encode_latent(x)[..., :10], codec.encode_latent(y)[..., :10])


def test_receptive_field_makes_chunks_match_the_whole(codec: AudioCodec) -> None:
    hop, rf = codec.hop_length, codec.receptive_field
    assert rf > 0
    pad_frames = math.ceil(rf / hop)
    total = 2 * pad_frames + 12
    x = torch.randn(1, codec.channels, total * hop)
    whole = codec.encode_latent(x)
    a, b = pad_frames, pad_frames + 12  # frames wanted
    chunk = codec.encode_latent(x[..., (a - pad_frames) * hop : (b + pad_frames) * hop])
    torch.testing.assert_close(chunk[..., pad_frames:-pad_frames], whole[..., a:b])
    # without the context the frames at the chunk edges differ
    bare = codec.encode_latent(x[..., a * hop : b * hop])
    assert not torch.allclose(bare, whole[..., a:b], atol=1e-4)


def test_training_forward_gives_finite_gradients(codec: AudioCodec) -> None:
    codec.train()
    x = torch.randn(2, codec.channels, 60)
    out = codec(x)
    (out.audio.square().mean() + out.loss).backward()
    for name in ("encoder", "decoder"):
        grads = [p.grad for p in getattr(codec, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_bitrates_and_properties() -> None:
    codec = tiny_soundstream("istft")
    assert codec.family == "soundstream"
    assert codec.hop_length == 6 and codec.sample_rate == 24000 and codec.channels == 1
    assert codec.frame_rate == 4000.0
    assert codec.num_codebooks == 3 and codec.codebook_size == 16
    assert codec.bitrate == pytest.approx(4000 * 3 * 4 / 1000)  # kbps
    assert codec.bitrate_for(1) == pytest.approx(16.0)
    vqvae = tiny_vqvae()
    assert vqvae.family == "audio_vqvae" and vqvae.num_codebooks == 1
    assert vqvae.bitrate == pytest.approx(24000 / 4 * 4 / 1000)
    with pytest.raises(ValueError):
        codec.bitrate_for(4)


@pytest.mark.parametrize("encoder", ["seanet", "spectral"])
def test_stereo_codec_round_trip(encoder: str) -> None:
    codec = tiny_soundstream(
        "istft", channels=2, encoder=encoder, encoder_hidden=16, encoder_layers=1
    ).eval()
    x = torch.randn(1, 2, 31)
    out = codec(x)
    decoded = codec.decode(codec.encode(x))
    assert out.audio.shape == (1, 2, 31) and decoded.shape == (1, 2, 36)
    # decode(encode(x)) is the eval forward, for both channels
    torch.testing.assert_close(decoded[..., :31], out.audio)
    # the channels are really two: each channel's input moves the codes...
    y = x.clone()
    y[:, 1] = torch.randn(31)
    assert not torch.equal(codec.encode_latent(codec._pad(x)), codec.encode_latent(codec._pad(y)))
    # ...and the decoder writes two different channels
    assert not torch.allclose(decoded[:, 0], decoded[:, 1])


@pytest.mark.parametrize(
    "wav",
    [
        torch.zeros(1, 1, 10, dtype=torch.long),
        torch.zeros(1, 10),
        torch.zeros(1, 2, 10),
        torch.zeros(1, 1, 0),
        torch.tensor([[[0.0, float("nan"), 1.0]]]),
        torch.tensor([[[0.0, float("inf"), 1.0]]]),
        [[0.0, 1.0]],
    ],
    ids=["int", "2d", "channels", "empty", "nan", "inf", "list"],
)
def test_bad_audio_raises(wav) -> None:
    codec = tiny_soundstream("seanet").eval()
    with pytest.raises(ValueError):
        codec.encode(wav)
    with pytest.raises(ValueError):
        codec(wav)


@pytest.mark.parametrize(
    "codes",
    [
        torch.zeros(1, 3, 4),  # float
        torch.zeros(3, 4, dtype=torch.long),  # 2-D
        torch.zeros(1, 0, 4, dtype=torch.long),  # k = 0
        torch.zeros(1, 4, 4, dtype=torch.long),  # k > K
        torch.zeros(1, 3, 0, dtype=torch.long),  # no frames
        torch.full((1, 3, 4), 16),  # out of range
        torch.full((1, 3, 4), -1),  # negative (dropped stage)
        torch.zeros(1, 3, 4, dtype=torch.bool),
    ],
    ids=["float", "2d", "k0", "k_too_big", "empty", "too_high", "negative", "bool"],
)
def test_bad_codes_raise(codes) -> None:
    codec = tiny_soundstream("seanet").eval()
    with pytest.raises(ValueError):
        codec.decode(codes)


def test_bad_num_codebooks_raises() -> None:
    codec = tiny_soundstream("seanet").eval()
    x = torch.randn(1, 1, 12)
    for k in (0, 4, 1.5, True):
        with pytest.raises(ValueError):
            codec.encode(x, num_codebooks=k)
    assert codec.decode(torch.zeros(1, 2, 3, dtype=torch.int32)).shape == (1, 1, 18)


def test_safetensors_round_trip_reproduces_the_model(codec: AudioCodec, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    codec.train()
    codec(torch.randn(2, codec.channels, 60))  # move EMA/k-means state off its init
    codec.eval()
    save_file(codec.state_dict(), tmp_path / "model.safetensors")
    config = type(codec.config).from_dict(codec.config.to_dict())
    torch.manual_seed(123)
    clone = type(codec)(config)
    clone.load_state_dict(load_file(tmp_path / "model.safetensors"))
    clone.eval()
    x = torch.randn(1, codec.channels, 41)
    torch.testing.assert_close(clone.encode(x), codec.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(clone(x).audio, codec(x).audio)
