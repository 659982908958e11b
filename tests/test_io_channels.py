"""One audio I/O stack: the same channel rule and resampler in datasets, tokenizer and eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.audio_io import AudioReader, convert_channels, resample, to_channels
from audiotok.data import EvalAudioDataset, ManifestEntry
from audiotok.errors import UserError
from audiotok.eval.report import _load, evaluate
from audiotok.tokenizer import AudioTokenizer

FILE_RATE, MODEL_RATE = 16000, 8000


def _surround(path: Path, seconds: float = 0.6) -> np.ndarray:
    """A 5.1 file of six different tones; returns its samples ``(6, T)``."""
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    x = np.stack([0.12 * (c + 1) * np.sin(2 * np.pi * (150 + 110 * c) * t) for c in range(6)])
    x = x.astype(np.float32)
    sf.write(path, x.T, FILE_RATE, subtype="FLOAT")
    return x


def _stereo_tokenizer() -> AudioTokenizer:
    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=MODEL_RATE,
        channels=2,
        ratios=(2, 4),
        encoder_channels=4,
        latent_dim=8,
        decoder_channels=4,
        quantizer={
            "type": "residual",
            "num_codebooks": 2,
            "stage": {"type": "vq", "codebook_size": 16},
        },
    )
    return AudioTokenizer(SoundStream(config).eval())


def test_surround_to_stereo_is_one_result_in_dataset_tokenizer_and_eval(tmp_path: Path) -> None:
    path = tmp_path / "surround.wav"
    x = _surround(path)
    # the rule: each stereo channel is the mean of the six, then soxr HQ to the model rate
    mean = soxr.resample(x.mean(axis=0), FILE_RATE, MODEL_RATE, quality="HQ")

    dataset = EvalAudioDataset(path, MODEL_RATE, channels=2)[0].numpy()  # (2, T)
    assert dataset.shape == (2, mean.shape[0])
    np.testing.assert_allclose(dataset[0], mean, atol=1e-6)
    np.testing.assert_array_equal(dataset[0], dataset[1])

    with AudioReader(path, MODEL_RATE, 2, block_frames=1000) as reader:  # the tokenizer's reader
        streamed = reader.read_all()
    np.testing.assert_array_equal(streamed, dataset)  # blocks + stream == whole file at once

    tok = _stereo_tokenizer()
    np.testing.assert_array_equal(_load(ManifestEntry(str(path)), tok, None), dataset)

    codes_from_file, meta = tok.encode_file(path)
    assert meta.original_channels == 6
    assert torch.equal(codes_from_file, tok.encode(dataset, MODEL_RATE)[0])
    assert torch.equal(codes_from_file, tok.encode(x, FILE_RATE)[0])  # array input: same rule


@pytest.mark.parametrize("shape", [(6, 2), (2, 1), (1, 2), (2, 6), (3, 3)])
def test_channel_rule(shape: tuple[int, int]) -> None:
    have, want = shape
    x = np.random.default_rng(0).standard_normal((have, 50)).astype(np.float32)
    y = convert_channels(x, want)
    assert y.shape == (want, 50) and y.dtype == np.float32
    expected = x if have == want else np.repeat(x.mean(axis=0, keepdims=True), want, axis=0)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert to_channels is convert_channels  # the data-side name is the same function


def test_resample_is_the_streaming_resampler_flushed_at_once() -> None:
    x = np.random.default_rng(1).standard_normal((2, 4001)).astype(np.float32)
    one_shot = soxr.resample(np.ascontiguousarray(x.T), 44100, 24000, quality="HQ").T
    np.testing.assert_array_equal(resample(x, 44100, 24000), one_shot)
    np.testing.assert_array_equal(resample(x[1], 44100, 24000), one_shot[1])
    with pytest.raises(ValueError):
        resample(x, 0, 24000)


def test_eval_names_a_broken_file_in_the_projects_words(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF but not really audio" * 10)
    with pytest.raises(UserError) as info:
        evaluate(_stereo_tokenizer(), [bad], out_dir=tmp_path / "rep", opus=False, visqol=False)
    message = str(info.value)
    assert f"{bad}: not a readable audio file (" in message
    assert "Error opening" not in message and message.count(str(bad)) == 1
    assert "\n" not in message
