"""Token shards: exact round trips, resumable writing, windows inside files, no foreign
tokens, damage detected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiotok.data.shards import (
    ShardWriter,
    TokenizerInfo,
    TokenShards,
    TokenWindows,
    split_for,
    write_meta,
)
from audiotok.errors import UserError

INFO = TokenizerInfo("abc123", num_codebooks=3, codebook_size=1024, frame_rate=75.0)


def _files(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"f{i}.wav": rng.integers(0, 1024, (3, int(rng.integers(5, 40)))) for i in range(n)}


def test_round_trip_across_shards_and_ranks(tmp_path: Path) -> None:
    files = _files(7)
    names = sorted(files)
    for rank in (0, 1):  # two ranks, each its share, as under torchrun
        w = ShardWriter(tmp_path, INFO, rank=rank, shard_frames=30)
        for name in names[rank::2]:
            w.add(name, files[name], {"kind": "speech", "source": name})
        w.flush()
    meta = write_meta(tmp_path, INFO)
    assert meta["files"] == 7 and meta["frames"] == sum(c.shape[1] for c in files.values())
    assert len(meta["shards"]) > 2  # small shards: several per rank
    shards = TokenShards(tmp_path, model_id="abc123", verify=True)
    got = {row["id"]: shards.codes(i) for i, row in enumerate(shards.files)}
    assert set(got) == set(files)
    for name, codes in files.items():
        np.testing.assert_array_equal(got[name], codes)
    arr = np.load(tmp_path / meta["shards"][0]["name"], allow_pickle=False)
    assert arr.dtype == np.uint16 and arr.shape[1] == 3  # (T, K), smallest dtype
    assert all(r["kind"] == "speech" for r in shards.files)


def test_a_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    files = _files(6, seed=1)
    names = sorted(files)
    w = ShardWriter(tmp_path, INFO, shard_frames=40)
    added = []
    for name in names:
        w.add(name, files[name])
        added.append(name)
        if any(w.has(n) for n in added) and not w.has(name):
            break
    flushed = {n for n in added if w.has(n)}
    assert flushed and flushed != set(added)  # the last ones were still queued: lost
    del w  # killed: no flush
    w = ShardWriter(tmp_path, INFO, shard_frames=40)
    for name in names:
        if not w.has(name):
            w.add(name, files[name])
    w.flush()
    write_meta(tmp_path, INFO)
    shards = TokenShards(tmp_path)
    assert sorted(r["id"] for r in shards.files) == names  # each exactly once
    for i, row in enumerate(shards.files):
        np.testing.assert_array_equal(shards.codes(i), files[row["id"]])


def test_tokens_of_another_model_are_refused(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, INFO)
    w.add("a", _files(1)["f0.wav"])
    w.flush()
    write_meta(tmp_path, INFO)
    with pytest.raises(UserError, match="abc123"):
        TokenShards(tmp_path, model_id="other")
    with pytest.raises(UserError, match="abc123"):
        ShardWriter(tmp_path, TokenizerInfo("other", 3, 1024, 75.0))
    with pytest.raises(UserError, match="not a token folder"):
        TokenShards(tmp_path / "nope")


def test_damaged_shard_is_detected(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, INFO)
    w.add("a", np.zeros((3, 50), dtype=np.int64))
    w.flush()
    meta = write_meta(tmp_path, INFO)
    path = tmp_path / meta["shards"][0]["name"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        TokenShards(tmp_path, verify=True)


def test_bad_codes_are_refused(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, INFO)
    with pytest.raises(ValueError):
        w.add("a", np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError):
        w.add("a", np.full((3, 5), 1024))


def test_windows_stay_inside_one_file_and_are_seeded(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, INFO, shard_frames=25)
    lengths = [9, 30, 12, 4, 50]
    for i, n in enumerate(lengths):
        w.add(f"f{i}", np.full((3, n), i))  # file i holds code i everywhere
    w.flush()
    write_meta(tmp_path, INFO)
    shards = TokenShards(tmp_path)
    ds = TokenWindows(shards, 10, num_examples=200, seed=3)
    assert ds.skipped == 2  # the 9- and 4-frame files
    seen = set()
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 10)
        assert len(set(x.flatten().tolist())) == 1  # never across a file end
        seen.add(int(x[0, 0]))
    assert seen == {1, 2, 4}
    again = TokenWindows(shards, 10, num_examples=200, seed=3)
    assert all(np.array_equal(ds[i], again[i]) for i in range(20))
    again.set_epoch(1)
    assert not all(np.array_equal(ds[i], again[i]) for i in range(20))
    with pytest.raises(UserError, match="no file has"):
        TokenWindows(shards, 60)


def test_dev_split_is_by_file_and_stable() -> None:
    keys = [f"speaker{i % 7}/file{i}.flac" for i in range(2000)]
    splits = [split_for(k, 0.1) for k in keys]
    assert splits == [split_for(k, 0.1) for k in keys]
    assert 0.06 < splits.count("dev") / len(keys) < 0.14
