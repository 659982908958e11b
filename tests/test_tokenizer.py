"""AudioTokenizer: exact chunking, batching, input forms, bitrates, files in bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.errors import UserError
from audiotok.tokenizer import (
    AudioTokenizer,
    AudioTokenizerProtocol,
    ImageTokenizerProtocol,
    Tokenizer,
    Window,
    plan_windows,
)

RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


def tiny(decoder: str = "seanet", channels: int = 1, **kw: object) -> SoundStream:
    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=8000,
        channels=channels,
        ratios=(2, 4),
        encoder_channels=4,
        latent_dim=8,
        decoder=decoder,
        decoder_channels=4,
        istft_hidden=8,
        istft_layers=1,
        quantizer=RVQ,
        **kw,  # type: ignore[arg-type]
    )
    return SoundStream(config).eval()


def test_plan_windows_cover_the_signal() -> None:
    wins = plan_windows(100, 16, 8)
    assert [w.keep_start for w in wins] == list(range(0, 100, 16))
    assert wins[0] == Window(0, 24, 0, 16) and wins[-1] == Window(88, 100, 96, 100)
    assert all(w.start <= w.keep_start < w.keep_end <= w.end for w in wins)
    # the kept chunks tile [0, total) exactly; only windows clipped at an end are shorter
    assert wins[0].keep_start == 0 and wins[-1].keep_end == 100
    assert [w.keep_end for w in wins[:-1]] == [w.keep_start for w in wins[1:]]
    assert {w.length for w in wins if 0 < w.start and w.end < 100} == {16 + 2 * 8}
    assert wins[0].shifted(4) == Window(-4, 20, -4, 12)
    with pytest.raises(AttributeError):
        wins[0].start = 1  # type: ignore[misc]  # frozen


def test_tokenizer_protocols_hold_with_values() -> None:
    """A real tokenizer fills the contract with working members, and a class missing one
    member does not pass as a tokenizer."""
    tok = AudioTokenizer(tiny())
    assert isinstance(tok, Tokenizer) and isinstance(tok, AudioTokenizerProtocol)
    assert not isinstance(tok, ImageTokenizerProtocol)  # no downsample_factor / latent_shape
    assert tok.modality == "audio"
    assert (tok.num_codebooks, tok.codebook_size, tok.vocab_size) == (3, 16, 48)
    assert (tok.sample_rate, tok.channels, tok.frame_rate) == (8000, 1, 1000.0)
    assert tok.bitrates == [4.0, 8.0, 12.0] and tok.bitrate == tok.bitrates[-1]
    wav = torch.randn(2, 1, 77)
    codes = tok.encode(wav, 8000)
    assert codes.dtype == torch.long and codes.shape == (2, tok.num_codebooks, 10)
    assert 0 <= int(codes.min()) and int(codes.max()) < tok.codebook_size
    out = tok.decode(codes)
    assert out.dtype == torch.float32 and out.shape == (2, tok.channels, 10 * 8)
    # every protocol member is required: drop any one and isinstance fails
    members = [
        "modality",
        "num_codebooks",
        "codebook_size",
        "vocab_size",
        "encode",
        "decode",
        "sample_rate",
        "channels",
        "frame_rate",
        "bitrate",
        "bitrates",
    ]
    for missing in members:
        fake = type("Fake", (), {m: 1 for m in members if m != missing})()
        assert not isinstance(fake, AudioTokenizerProtocol), missing
    whole = type("Fake", (), dict.fromkeys(members, 1))()
    assert isinstance(whole, AudioTokenizerProtocol)
    for missing in ("modality", "vocab_size", "encode"):
        assert not isinstance(type("Fake", (), {"decode": 1, missing: 1})(), Tokenizer)


@pytest.mark.parametrize("decoder", ["seanet", "istft"])
def test_chunked_equals_unchunked(decoder: str) -> None:
    model = tiny(decoder)
    rng = np.random.default_rng(0)
    for length in rng.integers(1, 900, size=4).tolist() + [8, 9]:
        wav = torch.randn(1, 1, length)
        full_codes = model.encode(wav)
        full_wav = model.decode(full_codes)
        for chunk_frames, batch in [(1, 1), (3, 2), (7, 5)]:
            tok = AudioTokenizer(model, chunk_seconds=chunk_frames / 1000, batch_size=batch)
            assert tok.chunk_frames == chunk_frames
            codes = tok.encode(wav)
            assert torch.equal(codes, full_codes), (length, chunk_frames)
            out = tok.decode(codes, length=length)
            assert out.shape == (1, 1, length)
            torch.testing.assert_close(out, full_wav[..., :length], atol=1e-5, rtol=0)


@pytest.mark.parametrize("decoder", ["seanet", "istft"])
def test_padded_batch_equals_items_alone(decoder: str) -> None:
    tok = AudioTokenizer(tiny(decoder), chunk_seconds=0.004, batch_size=3)
    lengths = [613, 37, 400, 613, 1]
    wav = torch.randn(len(lengths), 1, max(lengths))
    codes = tok.encode(wav, lengths=lengths)
    assert codes.shape == (5, 3, 77)
    for i, n in enumerate(lengths):
        alone = tok.encode(wav[i, :, :n])
        frames = -(-n // 8)
        assert torch.equal(codes[i, :, :frames], alone[0])
        assert not codes[i, :, frames:].any()
    decoded = tok.decode(codes, length=lengths)
    for i, n in enumerate(lengths):
        alone = tok.decode(codes[i, :, : -(-n // 8)], length=n)
        torch.testing.assert_close(decoded[i, :, :n], alone[0], atol=1e-5, rtol=0)
        assert not decoded[i, :, n:].any()


def test_decoder_context_is_measured_and_cached() -> None:
    tok = AudioTokenizer(tiny("seanet"))
    ctx = tok.decoder_context
    assert ctx is not None and 1 <= ctx <= 16
    assert tok.decoder_context == ctx
    assert tok.encoder_context is not None and tok.encoder_context % tok.hop_length == 0
    assert tok.encoder_context >= tok.receptive_field


def test_decoder_context_holds_when_codebooks_coincide() -> None:
    model = tiny("seanet")
    with torch.no_grad():
        for t in [*model.quantizer.parameters(), *model.quantizer.buffers()]:
            t.zero_()  # every code decodes alike: a code probe would see no context at all
    tok = AudioTokenizer(model, chunk_seconds=0.002)
    codes = torch.randint(0, 16, (1, 3, 90))
    torch.testing.assert_close(tok.decode(codes), model.decode(codes), atol=1e-5, rtol=0)


def test_recurrent_model_is_not_chunked() -> None:
    model = tiny("seanet", lstm_layers=1)
    tok = AudioTokenizer(model, chunk_seconds=0.002)
    assert tok.encoder_context is None and tok.decoder_context is None
    wav = torch.randn(1, 1, 300)
    assert torch.equal(tok.encode(wav), model.encode(wav))


def test_input_forms_rates_and_channels() -> None:
    tok = AudioTokenizer(tiny())
    x = np.random.default_rng(1).standard_normal(500).astype(np.float32)
    ref = tok.encode(torch.from_numpy(x)[None, None])
    assert torch.equal(tok.encode(x), ref)
    assert torch.equal(tok.encode(x[None]), ref)
    assert torch.equal(tok.encode(torch.from_numpy(x).double()), ref)
    stereo = np.stack([x + 0.5, x - 0.5])  # mean is x
    assert torch.equal(tok.encode(stereo), ref)
    up = soxr.resample(x, 8000, 16000)
    assert torch.equal(tok.encode(up, 16000), tok.encode(soxr.resample(up, 16000, 8000)))
    stereo_tok = AudioTokenizer(tiny(channels=2))
    assert torch.equal(stereo_tok.encode(x), stereo_tok.encode(np.stack([x, x])))


def test_bitrates_and_codebooks() -> None:
    tok = AudioTokenizer(tiny())  # 1000 frames/s x 4 bits per codebook
    assert tok.bitrates == [4.0, 8.0, 12.0] and tok.bitrate == 12.0  # kbps, like the CLI
    assert tok.vocab_size == 48
    wav = torch.randn(1, 1, 200)
    full = tok.encode(wav)
    assert torch.equal(tok.encode(wav, bitrate=8), full[:, :2])
    assert torch.equal(tok.encode(wav, bitrate=np.float32(4.0)), full[:, :1])
    assert torch.equal(tok.encode(wav, num_codebooks=np.int64(1)), full[:, :1])
    assert tok.decode(full[:, :1]).shape == (1, 1, 200)
    # off the ladder is an error listing the ladder, not "the most that fit" (8000 bps
    # used to mean all codebooks)
    for off in (8000, 9999, 5, 3, True, "8"):
        with pytest.raises(UserError, match=r"not available; valid bitrates: 4, 8, 12 kbps"):
            tok.encode(wav, bitrate=off)
    with pytest.raises(UserError, match="not both"):
        tok.encode(wav, bitrate=4, num_codebooks=1)
    with pytest.raises(UserError, match=r"\[1, 3\]"):
        tok.encode(wav, num_codebooks=4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.encode(np.zeros(10, np.int16)), "float"),
        (lambda t: t.encode(np.full(10, np.nan, np.float32)), "NaN"),
        (lambda t: t.encode(np.zeros((1, 1, 1, 10), np.float32)), "shape"),
        (lambda t: t.encode(np.zeros((1, 0), np.float32)), "shape"),
        (lambda t: t.encode(np.zeros((2, 1, 9), np.float32), lengths=[9, 10]), "lengths"),
        (lambda t: t.decode(np.zeros((3, 5), np.float32)), "integer"),
        (lambda t: t.decode(np.full((3, 5), 16)), "out of range"),
        (lambda t: t.decode(np.zeros((4, 5), np.int64)), r"\[1, 3\]"),
        (lambda t: t.decode(np.zeros(5, np.int64)), "shape"),
        (lambda t: t.decode(np.zeros((3, 5), np.int64), length=41), "length"),
    ],
)
def test_bad_inputs(call: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        call(AudioTokenizer(tiny()))  # type: ignore[operator]


class _Spy:
    """Record the time length and batch of every encoder/decoder call."""

    def __init__(self, model: SoundStream) -> None:
        self.shapes: list[tuple[int, ...]] = []
        for name in ("encode", "decode"):
            fn = getattr(model, name)
            setattr(model, name, self._wrap(fn))

    def _wrap(self, fn):  # type: ignore[no-untyped-def]
        def call(x, *a, **k):  # type: ignore[no-untyped-def]
            self.shapes.append(tuple(x.shape))
            return fn(x, *a, **k)

        return call


def test_files_stream_in_bounded_windows(tmp_path: Path) -> None:
    """encode_file == encode of the whole file; no call sees more than one batch of windows."""
    model = tiny("istft")
    tok = AudioTokenizer(model, chunk_seconds=0.016, batch_size=2)
    tok.read_block_frames = 777
    x = np.random.default_rng(2).standard_normal((2, 11025 * 2 + 13)).astype(np.float32) * 0.1
    sf.write(tmp_path / "in.wav", x.T, 11025, subtype="FLOAT")
    spy = _Spy(model)
    seen: list[tuple[int, int]] = []
    codes, meta = tok.encode_file(tmp_path / "in.wav", progress=lambda d, t: seen.append((d, t)))
    assert torch.equal(codes[None], tok.encode(x, 11025))
    n = soxr.resample(x.T, 11025, 8000).shape[0]
    assert meta.length == n and codes.shape == (3, -(-n // 8))
    assert (meta.original_length, meta.original_sample_rate, meta.original_channels) == (
        x.shape[1],
        11025,
        2,
    )
    window = tok.chunk_frames * 8 + 2 * tok.encoder_context
    assert max(s[-1] for s in spy.shapes) <= window and max(s[0] for s in spy.shapes) <= 2
    assert seen[-1][0] == n and len(seen) > 10

    spy.shapes.clear()
    out = tok.decode_to_file(codes, tmp_path / "out.wav", length=n)
    wav, rate = sf.read(out, dtype="float32")
    assert rate == 8000 and wav.shape == (n,)
    ref = tok.decode(codes, length=n)[0, 0].numpy()
    np.testing.assert_allclose(wav, np.clip(ref, -1, 1), atol=1 / 16384)
    frames = tok.chunk_frames + 2 * tok.decoder_context
    assert max(s[-1] for s in spy.shapes) <= frames and max(s[0] for s in spy.shapes) <= 2

    back = tok.decode_to_file(codes, tmp_path / "orig.flac", length=x.shape[1], sample_rate=11025)
    assert sf.info(back).frames == x.shape[1] and sf.info(back).samplerate == 11025
    with pytest.raises(UserError, match="--force"):
        tok.decode_to_file(codes, tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "orig.flac", "out.wav"]


def test_failed_decode_leaves_nothing(tmp_path: Path) -> None:
    model = tiny()
    tok = AudioTokenizer(model, chunk_seconds=0.002)
    calls = []

    def broken(codes: torch.Tensor) -> torch.Tensor:
        calls.append(codes.shape)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return SoundStream.decode(model, codes)

    model.decode = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="boom"):
        tok.decode_to_file(torch.zeros(3, 50, dtype=torch.long), tmp_path / "x.wav")
    assert not list(tmp_path.iterdir())


def test_file_errors(tmp_path: Path) -> None:
    tok = AudioTokenizer(tiny())
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 8000)
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.inf, 0.0], np.float32), 8000, subtype="FLOAT")
    cases = {"missing.wav": "not found", "text.wav": "not a readable audio file"}
    cases |= {"empty.wav": "empty", "zero.wav": "no samples", "nan.wav": "NaN"}
    for name, message in cases.items():
        with pytest.raises(UserError, match=message) as info:
            tok.encode_file(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name))
