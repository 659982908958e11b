"""Crop datasets: determinism (seed, epoch, workers), skipping bad files, preloading, eval set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from data_fixtures import write
from torch.utils.data import DataLoader

from audiotok.data import (
    AudioDataset,
    EvalAudioDataset,
    PreloadedAudioDataset,
    build_audio_dataset,
    load_entries,
    pad_collate,
    split_by_file,
)
from audiotok.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:.*dropped:RuntimeWarning")


def _all(ds, epoch: int = 0) -> torch.Tensor:
    ds.set_epoch(epoch)
    return torch.stack([ds[i] for i in range(len(ds))])


def test_crops_are_resampled_and_sized(corpus: Path) -> None:
    ds = AudioDataset(corpus, sample_rate=8000, channels=2, segment_seconds=0.25, seed=0)
    x = ds[0]
    assert x.shape == (2, 2000) and x.dtype == torch.float32
    assert torch.equal(x[0], x[1])  # mono files duplicated to stereo
    long = AudioDataset(corpus, 8000, 1, segment_seconds=5.0, weighting="file")
    assert long.entries[0].path.endswith("f0.wav")  # broken.flac was dropped
    y = long[0]  # the 0.3 s file, zero-padded at the end
    assert y.shape == (1, 40000) and y[:, 2400:].abs().max() == 0 and y[:, :2000].abs().max() > 0.1


def test_corrupt_header_is_dropped_at_construction(corpus: Path) -> None:
    with pytest.warns(RuntimeWarning) as caught:
        ds = AudioDataset(corpus, 8000, 1, 0.2, weighting="file", num_examples=50)
    lines = [str(w.message) for w in caught]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith(str(corpus / "sub0" / "broken.flac") + ": dropped (")
    assert lines[1] == f"{corpus}: 6 of 7 files kept, 1 dropped"
    assert [Path(p).name for p, _ in ds.dropped] == ["broken.flac"]
    assert len(ds.entries) == 6 and ds.num_skipped == 0
    items = _all(ds)
    assert items.shape == (50, 1, 1600)
    assert (items.abs().amax(dim=(1, 2)) > 0.1).all()  # every item is real audio


def test_file_that_fails_to_decode_is_skipped_and_counted(tmp_path: Path) -> None:
    write(tmp_path / "good.wav", 0.5, 8000, freq=300)
    bad = np.zeros(4000, np.float32)
    bad[100] = np.nan  # the header reads; the samples are refused when decoded
    sf.write(tmp_path / "nan.wav", bad, 8000, subtype="FLOAT")
    ds = AudioDataset(tmp_path, 8000, 1, 0.2, weighting="file", num_examples=20)
    assert ds.dropped == [] and len(ds.entries) == 2
    with pytest.warns(RuntimeWarning, match=r"nan\.wav: dropped \(.*NaN"):
        items = _all(ds)
    assert ds.num_skipped == 1 and [Path(p).name for p, _ in ds.dropped] == ["nan.wav"]
    assert (items.abs().amax(dim=(1, 2)) > 0.1).all()
    with pytest.warns(RuntimeWarning) as caught:  # preloading decodes it up front
        pre = PreloadedAudioDataset(tmp_path, 8000, 1, 0.2)
    assert [str(w.message) for w in caught][-1] == f"{tmp_path}: 1 of 2 files kept, 1 dropped"
    assert len(pre.entries) == 1 and [Path(p).name for p, _ in pre.dropped] == ["nan.wav"]


@pytest.mark.parametrize("cls", [AudioDataset, PreloadedAudioDataset, EvalAudioDataset])
def test_each_dropped_file_is_reported_with_the_counts(tmp_path: Path, cls: type) -> None:
    write(tmp_path / "a.wav", 0.4, 8000, freq=300)
    write(tmp_path / "b.wav", 0.4, 8000, freq=600)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.flac").write_bytes(b"fLaC" + bytes(64))
    (tmp_path / "text.ogg").write_text("not audio")
    with pytest.warns(RuntimeWarning) as caught:
        ds = cls(tmp_path, 8000, 1, 0.1)
    lines = [str(w.message) for w in caught]
    assert sorted(line.split(":")[0] for line in lines[:3]) == [
        str(tmp_path / n) for n in ("empty.wav", "junk.flac", "text.ogg")
    ]
    assert all("dropped (" in line for line in lines[:3])
    assert lines[3:] == [f"{tmp_path}: 2 of 5 files kept, 3 dropped"]
    assert len(ds.entries) == 2 and len(ds.dropped) == 3


@pytest.mark.parametrize("cls", [AudioDataset, PreloadedAudioDataset, EvalAudioDataset])
def test_no_usable_file_is_one_line_error(tmp_path: Path, cls: type) -> None:
    (tmp_path / "a.wav").write_bytes(b"nope")
    (tmp_path / "b.wav").write_bytes(b"")
    with pytest.raises(UserError) as info:
        cls(tmp_path, 8000, 1, 0.1)
    message = str(info.value)
    assert message.startswith(f"no usable audio in {tmp_path}: all 2 files were dropped")
    assert str(tmp_path / "a.wav") in message and "\n" not in message


def test_deterministic_by_seed_and_epoch(corpus: Path) -> None:
    a = AudioDataset(corpus, 8000, 1, 0.1, seed=1, num_examples=12)
    b = AudioDataset(corpus, 8000, 1, 0.1, seed=1, num_examples=12)
    c = AudioDataset(corpus, 8000, 1, 0.1, seed=2, num_examples=12)
    e0 = _all(a, 0)
    assert torch.equal(e0, _all(b, 0))
    assert not torch.equal(e0, _all(c, 0))
    assert not torch.equal(e0, _all(a, 1))
    assert torch.equal(e0, _all(a, 0))  # resumable: epoch 0 again is the same
    assert torch.equal(a[5], b[5])  # an item does not depend on what was read before


def test_same_crops_with_dataloader_workers(corpus: Path) -> None:
    ds = AudioDataset(corpus, 8000, 1, 0.1, seed=3, num_examples=16)
    ds.set_epoch(2)
    ref = torch.cat(list(DataLoader(ds, batch_size=4, num_workers=0)))
    par = torch.cat(list(DataLoader(ds, batch_size=4, num_workers=2)))
    assert torch.equal(ref, par)


def test_duration_weighting_prefers_long_files(tmp_path: Path) -> None:
    write(tmp_path / "short.wav", 0.1, 8000, freq=100)
    write(tmp_path / "long.wav", 1.9, 8000, freq=1000)
    ds = AudioDataset(tmp_path, 8000, 1, 0.05, num_examples=400)
    picks = [ds.entries[ds._pick_file(ds._rng(i, 0), i, 0)].path for i in range(400)]
    share = sum(p.endswith("long.wav") for p in picks) / 400
    assert 0.88 < share < 1.0  # expected 0.95


def test_preloaded_matches_streaming(corpus: Path) -> None:
    kw = dict(sample_rate=8000, channels=1, segment_seconds=0.1, seed=5, num_examples=20)
    stream = _all(AudioDataset(corpus, **kw), 1)
    with pytest.warns(RuntimeWarning, match="broken.flac"):
        pre = PreloadedAudioDataset(corpus, **kw)
    assert len(pre.dropped) == 1 and pre.num_skipped == 0
    assert torch.allclose(stream, _all(pre, 1), atol=1.0 / 32767 + 1e-6)
    assert isinstance(build_audio_dataset(corpus, 8000, preload=True), PreloadedAudioDataset)


def test_long_files_read_by_window_match_full_read(tmp_path: Path) -> None:
    write(tmp_path / "long.flac", 3.0, 16000, freq=300)
    full = AudioDataset(tmp_path, 8000, 1, 0.25, num_examples=5)
    window = AudioDataset(tmp_path, 8000, 1, 0.25, num_examples=5, max_full_read_seconds=1.0)
    for i in range(5):
        a, b = full[i], window[i]
        assert a.shape == b.shape == (1, 2000)
        assert (a - b).abs().max() < 0.02  # same crop; soxr edge effects only


def test_split_puts_every_crop_of_a_file_on_one_side(corpus: Path) -> None:
    # source ids independent of the tmp path, so the seeded hash split is the same every run
    entries = [
        dataclasses.replace(e, source=Path(e.path).name)
        for e in load_entries(corpus)
        if "broken" not in e.path
    ]
    train, dev = split_by_file(entries, 0.4, seed=0)
    assert train and dev
    train_ds = AudioDataset(train, 8000, 1, 0.05, num_examples=60)
    dev_paths = {e.path for e in dev}
    for i in range(60):
        f = train_ds._pick_file(train_ds._rng(i, 0), i, 0)
        assert train_ds.entries[f].path not in dev_paths


def test_eval_dataset_whole_files_and_fixed_crops(corpus: Path) -> None:
    with pytest.warns(RuntimeWarning, match="broken.flac"):
        ev = EvalAudioDataset(corpus, 8000)
    items = [ev[i] for i in range(len(ev))]
    lengths = sorted(x.shape[-1] for x in items)
    assert lengths == [2400, 4000, 5600, 7200, 8800, 10400]
    wav, lens = pad_collate(items)
    assert wav.shape == (6, 1, 10400) and lens.tolist() == [x.shape[-1] for x in items]
    crops = EvalAudioDataset(corpus, 8000, segment_seconds=0.5)
    assert torch.equal(crops[1], crops[1]) and crops[1].shape == (1, 4000)
    first = EvalAudioDataset(corpus, 8000, max_files=2)  # max_files counts readable files
    assert [Path(e.path).name for e in first.entries] == ["f0.wav", "f2.wav"]
    assert isinstance(build_audio_dataset(corpus, 8000, train=False), EvalAudioDataset)


def test_streaming_with_no_decodable_file_is_one_line_error(tmp_path: Path) -> None:
    bad = np.zeros(800, np.float32)
    bad[5] = np.inf
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, bad, 8000, subtype="FLOAT")
    ds = AudioDataset(tmp_path, 8000, 1, 0.05)  # the headers are fine
    with pytest.raises(UserError) as info:
        ds[0]
    message = str(info.value)
    assert message.startswith(f"no readable audio in {tmp_path}: 2 of 2 files failed to decode")
    assert "NaN or infinite" in message and "\n" not in message
