"""The training mix (``data.shares``): each group gets its share of the crops, whatever its hours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from data_fixtures import write

from audiotok.data import AudioDataset
from audiotok.data.audio import mix_weights
from audiotok.data.manifest import ManifestEntry
from audiotok.errors import UserError
from audiotok.training.build import AudioTaskBuilder
from audiotok.training.config import load_config
from audiotok.training.ddp import DistInfo


def _manifest(tmp_path: Path, rows: list[tuple[str, float, str | None]]) -> Path:
    lines = []
    for name, seconds, kind in rows:
        path = write(tmp_path / name, seconds, 8000)
        row = {"path": str(path), "sample_rate": 8000, "duration": seconds, "channels": 1}
        if kind is not None:
            row["kind"] = kind
        lines.append(json.dumps(row))
    out = tmp_path / "train.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


def _picked_kinds(ds: AudioDataset, n: int) -> list[str]:
    return [ds.entries[ds._pick_file(ds._rng(i, 0), i, 0)].extra["kind"] for i in range(n)]


def test_shares_override_hours(tmp_path: Path) -> None:
    # 3 s of speech in three files against 12 s of music: by hours speech gets 20 %
    rows = [("s1.wav", 1.0, "speech"), ("s2.wav", 0.5, "speech"), ("s3.wav", 1.5, "speech")]
    manifest = _manifest(tmp_path, [*rows, ("m.wav", 12.0, "music")])
    plain = AudioDataset(manifest, 8000, 1, 0.05, num_examples=2000)
    mixed = AudioDataset(
        manifest, 8000, 1, 0.05, num_examples=2000, shares={"speech": 3, "music": 1}
    )
    by_hours = _picked_kinds(plain, 2000).count("speech") / 2000
    by_share = _picked_kinds(mixed, 2000).count("speech") / 2000
    assert 0.16 < by_hours < 0.24  # expected 0.20
    assert 0.72 < by_share < 0.78  # expected 0.75
    assert (
        mixed.describe()
        == "4 files, 0.0 h; mix by kind: music 25% of crops (0.0 h), speech 75% (0.0 h)"
    )
    assert plain.describe() == "4 files, 0.0 h"
    # within a group the draw stays duration-weighted
    picks = [mixed.entries[mixed._pick_file(mixed._rng(i, 0), i, 0)] for i in range(2000)]
    speech = [p.duration for p in picks if p.extra["kind"] == "speech"]
    assert 0.42 < speech.count(1.5) / len(speech) < 0.58  # expected 0.5


def test_weights_sum_to_one_and_zero_share_leaves_a_group_out() -> None:
    entries = [
        ManifestEntry("a", 8000, 2.0, 1, extra={"kind": "speech"}),
        ManifestEntry("b", 8000, 6.0, 1, extra={"kind": "speech"}),
        ManifestEntry("c", 8000, 1.0, 1, extra={"kind": "noise"}),
    ]
    w = mix_weights(entries, {"speech": 1.0, "noise": 0.0})
    assert np.allclose(w, [0.25, 0.75, 0.0])
    w = mix_weights(entries, {"speech": 0.5, "noise": 0.5})
    assert np.isclose(w.sum(), 1.0) and np.isclose(w[2], 0.5)


@pytest.mark.parametrize(
    ("shares", "kinds", "needle"),
    [
        ({"speech": 1.0}, ["speech", "music"], "no share for kind 'music'"),
        ({"speech": 1.0, "musik": 1.0}, ["speech"], "names kind 'musik', which no file"),
        ({"speech": -1.0}, ["speech"], "must be >= 0"),
        ({"speech": float("nan")}, ["speech"], "must be >= 0"),
        ({"speech": 0.0}, ["speech"], "every share is 0"),
        ({"speech": 1.0}, ["speech", None], "1 of 2 files"),
    ],
)
def test_bad_mix_is_one_line_error(shares: dict, kinds: list, needle: str) -> None:
    entries = [
        ManifestEntry(f"f{i}", 8000, 1.0, 1, extra={} if k is None else {"kind": k})
        for i, k in enumerate(kinds)
    ]
    with pytest.raises(UserError) as info:
        mix_weights(entries, shares)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_mix_by_another_field(tmp_path: Path) -> None:
    entries = [
        ManifestEntry("a", 8000, 9.0, 1, extra={"dataset": "big"}),
        ManifestEntry("b", 8000, 1.0, 1, extra={"dataset": "small"}),
    ]
    assert np.allclose(mix_weights(entries, {"big": 1, "small": 1}, by="dataset"), [0.5, 0.5])


def test_recipe_shares_reach_the_training_set(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [("s.wav", 1.0, "speech"), ("m.wav", 9.0, "music")])
    recipe = {
        "model": {"family": "audio_vqvae", "config": {"sample_rate": 8000}},
        "data": {"train": str(manifest), "shares": {"speech": 1, "music": 1}},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    cfg = load_config(path, overrides=["data.shares.music=3", "data.examples_per_epoch=1000"])
    assert cfg.data.shares == {"speech": 1.0, "music": 3.0}

    class Model:  # what build_datasets reads of the model
        sample_rate, channels = 8000, 1

    train, _ = AudioTaskBuilder().build_datasets(cfg, Model(), DistInfo())
    assert 0.19 < _picked_kinds(train, 1000).count("speech") / 1000 < 0.31  # expected 0.25
    cfg = load_config(path, overrides=["data.train=synthetic"])
    with pytest.raises(UserError, match="synthetic has none"):
        AudioTaskBuilder().build_datasets(cfg, Model(), DistInfo())


def test_recipe_share_that_is_not_a_number_is_named() -> None:
    from audiotok.training.config import config_from_dict

    recipe = {
        "model": {"family": "audio_vqvae"},
        "data": {"train": "x", "shares": {"speech": "half"}},
    }
    with pytest.raises(UserError, match=r"'data.shares.speech' in r.yaml must be a number"):
        config_from_dict(recipe, "r.yaml")
