"""Audio, checkpoints, manifests and metric logs are written through audiotok.atomic.

Each gets the umask's mode (not mkstemp's 0600), leaves no temporary file, and replaces an
existing file only where that is the point (a checkpoint's own name, a manifest asked to).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from audiotok.atomic import is_temp
from audiotok.audio_io import (
    AudioFileError,
    AudioWriter,
    read_audio,
    write_audio,
    written_by_audiotok,
)
from audiotok.data.manifest import ManifestEntry, read_manifest, write_manifest
from audiotok.errors import UserError
from audiotok.training.checkpoint import load_checkpoint, save_checkpoint
from audiotok.training.logging import MetricsLogger


@pytest.fixture
def umask_027() -> Iterator[int]:
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _no_temp_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if is_temp(p)]


def test_checkpoint_respects_umask_and_replaces_its_own_name(tmp_path: Path, umask_027) -> None:
    path = tmp_path / "checkpoints" / "step_00000002.pt"
    save_checkpoint({"model": {"w": torch.zeros(2)}, "config": {}, "step": 1}, path)
    assert _mode(path) == umask_027
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {}, "step": 2}, path)
    state = load_checkpoint(path)
    assert state["step"] == 2 and torch.equal(state["model"]["w"], torch.ones(2))
    _no_temp_left(path.parent)


def test_manifest_respects_umask_and_overwrites_only_when_asked(tmp_path: Path, umask_027) -> None:
    path = tmp_path / "m.jsonl"
    write_manifest([ManifestEntry(str(tmp_path / "a.wav"), 8000, 1.0, 1)], path)
    assert _mode(path) == umask_027
    two = [ManifestEntry(str(tmp_path / n), 8000, 1.0, 1) for n in ("a.wav", "b.wav")]
    with pytest.raises(UserError, match="already exists"):
        write_manifest(two, path, force=False)
    assert len(read_manifest(path)) == 1  # untouched
    write_manifest(two, path)  # the default replaces (a corpus build can be re-run)
    assert [Path(e.path).name for e in read_manifest(path)] == ["a.wav", "b.wav"]
    _no_temp_left(tmp_path)


def test_metrics_log_rewritten_on_resume_keeps_umask_mode(tmp_path: Path, umask_027) -> None:
    log = MetricsLogger(tmp_path, total_steps=3, tensorboard=False, progress=False)
    for step in (1, 2, 3):
        log.log(step, "train", {"loss": float(step)})
    log.close()
    resumed = MetricsLogger(
        tmp_path, total_steps=3, start_step=1, tensorboard=False, progress=False
    )
    resumed.close()
    path = tmp_path / "metrics.jsonl"
    assert [json.loads(ln)["step"] for ln in path.read_text().splitlines()] == [1]
    assert _mode(path) == umask_027
    _no_temp_left(tmp_path)


def test_write_audio_respects_umask_and_is_not_marked_as_a_decode(
    tmp_path: Path, umask_027
) -> None:
    x = np.linspace(-1, 1, 800, dtype=np.float32)[None]
    corpus_copy = write_audio(tmp_path / "sub" / "a.wav", x, 8000)
    assert _mode(corpus_copy) == umask_027
    assert not written_by_audiotok(corpus_copy)  # so decode never treats it as its own output
    write_audio(corpus_copy, -x, 8000)  # replaces
    np.testing.assert_allclose(read_audio(corpus_copy)[0], -x, atol=1e-4)
    with AudioWriter(tmp_path / "decoded.wav", 8000, 1) as writer:
        writer.write(x)
    assert written_by_audiotok(tmp_path / "decoded.wav")
    _no_temp_left(tmp_path / "sub")
    _no_temp_left(tmp_path)


def test_audio_file_error_keeps_path_and_problem_through_pickle(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 8)
    with pytest.raises(AudioFileError) as info:
        read_audio(bad)
    err = pickle.loads(pickle.dumps(info.value))  # DataLoader workers send errors this way
    assert (err.path, err.problem) == (str(bad), info.value.problem)
    assert str(err) == f"{bad}: not a readable audio file (Format not recognised.)"
    assert isinstance(err, UserError)
