"""The synthetic data source: deterministic per (seed, split, epoch, index), usable audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiotok.data import SyntheticAudioDataset, build_audio_dataset
from audiotok.data.synthetic import is_synthetic


def test_items_are_a_function_of_seed_split_epoch_and_index() -> None:
    a = SyntheticAudioDataset(16000, 1, 0.25, seed=1, num_examples=8)
    b = SyntheticAudioDataset(16000, 1, 0.25, seed=1, num_examples=8)
    assert torch.equal(a[5], b[5])  # no hidden state: item 5 without reading items 0-4
    assert not torch.equal(a[5], a[4])
    assert not torch.equal(a[5], SyntheticAudioDataset(16000, 1, 0.25, seed=2)[5])
    first = a[3]
    a.set_epoch(1)
    assert not torch.equal(a[3], first)  # a new set of training clips every epoch
    a.set_epoch(0)
    assert torch.equal(a[3], first)  # and the same again when an epoch is replayed


def test_dev_split_is_fixed_and_differs_from_train() -> None:
    dev = SyntheticAudioDataset(16000, 1, 0.25, split="dev", seed=0)
    train = SyntheticAudioDataset(16000, 1, 0.25, split="train", seed=0)
    clips = [dev[i] for i in range(len(dev))]
    dev.set_epoch(7)
    assert all(torch.equal(c, dev[i]) for i, c in enumerate(clips))  # epoch is ignored
    assert not any(torch.equal(dev[i], train[i]) for i in range(len(dev)))
    assert len(dev) == 16 and len(train) == 256


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (24000, 2), (44100, 1)])
def test_clips_are_sized_finite_and_audible(rate: int, channels: int) -> None:
    ds = SyntheticAudioDataset(rate, channels, 0.3, num_examples=24)
    items = torch.stack([ds[i] for i in range(len(ds))])
    assert items.shape == (24, channels, round(0.3 * rate)) and items.dtype == torch.float32
    assert torch.isfinite(items).all() and items.abs().max() <= 0.95 + 1e-6
    rms = items.pow(2).mean(dim=(1, 2)).sqrt()
    assert (rms > 1e-3).all()  # never silence
    # varied material: spectral centroids spread over more than an octave
    spec = torch.fft.rfft(items[:, 0], dim=-1).abs()
    freqs = torch.fft.rfftfreq(items.shape[-1], 1.0 / rate)
    centroid = (spec * freqs).sum(-1) / spec.sum(-1)
    assert centroid.max() / centroid.min() > 2.0
    assert centroid.max() < rate / 2


def test_builder_selects_synthetic_for_train_and_dev() -> None:
    assert is_synthetic("synthetic") and not is_synthetic("synthetic.wav")
    train = build_audio_dataset("synthetic", 16000, 1, 0.1, train=True, num_examples=12)
    dev = build_audio_dataset("synthetic", 16000, 1, None, train=False, max_files=3)
    assert isinstance(train, SyntheticAudioDataset) and len(train) == 12
    assert isinstance(dev, SyntheticAudioDataset) and dev.split == "dev" and len(dev) == 3
    assert dev[0].shape == (1, 16000)  # no segment length: 1 s clips
    level = build_audio_dataset("synthetic", 16000, 1, 0.1, loudness_db=-20.0)[0]
    assert abs(20 * np.log10(float(level.pow(2).mean().sqrt())) + 20.0) < 1.0
