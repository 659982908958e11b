"""What a new user meets running ``audiotok train``: recipes that run in a fresh clone, a
missing corpus explained in one line, and corrupt training files reported, not hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
QUIET = ["--set", "log.progress=false", "--set", "log.tensorboard=false"]


def _train(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m audiotok train ...`` in ``tmp_path`` with no corpus anywhere."""
    environ = {k: v for k, v in os.environ.items() if k != "AUDIOTOK_CORPUS"}
    environ.update(XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "audiotok", "train", *args, *QUIET],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tiny_debug_trains_in_a_fresh_clone_without_a_corpus(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = _train([str(RECIPES / "tiny_debug.yaml"), "--max-steps", "2", "--run-dir", str(run)],
                 tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert (run / "checkpoints" / "step_00000002.pt").is_file()
    assert (run / "samples" / "step_2" / "0_ref.wav").is_file()  # the synthetic dev split


def test_missing_corpus_is_one_line_saying_how_to_build_it(tmp_path: Path) -> None:
    out = _train([str(RECIPES / "audio_vqvae_16k.yaml"), "--run-dir", str(tmp_path / "r")],
                 tmp_path)  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    corpus = tmp_path / "cache" / "audiotok" / "corpus"
    assert len(lines) == 1 and lines[0].startswith(
        f"error: data source not found: {corpus / 'train.jsonl'} "
    )
    assert f"python recipes/data/build_corpus.py --out {corpus}" in lines[0]
    assert "--set data.train=" in lines[0] and "AUDIOTOK_CORPUS" in lines[0]


def _folder(root: Path, good: int, bad: dict[str, bytes]) -> Path:
    root.mkdir()
    t = np.arange(8000) / 16000
    for i in range(good):
        sf.write(root / f"good{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)), 16000)
    for name, data in bad.items():
        (root / name).write_bytes(data)
    return root


BAD = {"empty.wav": b"", "junk.flac": b"fLaC" + bytes(64), "notes.ogg": b"not audio"}


@pytest.mark.parametrize("preload", ["false", "true"])
def test_corrupt_training_files_are_reported_with_counts(tmp_path: Path, preload: str) -> None:
    data = _folder(tmp_path / "audio", 2, BAD)
    args = [str(RECIPES / "tiny_debug.yaml"), "--max-steps", "1", "--run-dir", str(tmp_path / "r"),
            "--set", f"data.train={data}", "--set", f"data.preload={preload}",
            "--set", "data.examples_per_epoch=8"]  # fmt: skip
    out = _train(args, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if str(data) in ln]
    dropped = sorted(ln for ln in lines if ": dropped (" in ln)
    assert [ln.split(": dropped (")[0] for ln in dropped] == [
        f"warning: {data / name}" for name in sorted(BAD)
    ]
    assert f"warning: {data}: 2 of 5 files kept, 3 dropped" in lines
    assert "Traceback" not in out.stderr


def test_training_with_no_usable_file_fails_in_one_line(tmp_path: Path) -> None:
    data = _folder(tmp_path / "audio", 0, BAD)
    args = [str(RECIPES / "tiny_debug.yaml"), "--run-dir", str(tmp_path / "r"),
            "--set", f"data.train={data}"]  # fmt: skip
    out = _train(args, tmp_path)
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: no usable audio in {data}: all 3 files were dropped ")
    assert f"(first: {data / 'empty.wav'}: " in errors[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()
