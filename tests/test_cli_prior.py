"""The prior path from a fresh install, as the README shows it: tokenize a folder, train
prior_tiny on the shards, export it, generate from a prompt, score it (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audiotok", *args], capture_output=True, text=True, cwd=cwd
    )


def test_tokenize_train_generate_eval(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(3 * 24000) / 24000
    for i in range(4):
        wav = 0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(audio / f"clip{i}.wav", wav.astype(np.float32), 24000)
    (audio / "broken.wav").write_bytes(b"not audio at all")

    res = _cli("tokenize", str(audio), "-o", "tok", "--dev-fraction", "0.3", cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # the broken file fails, the rest is done
    assert "broken.wav" in res.stderr and "Traceback" not in res.stderr
    meta = json.loads((tmp_path / "tok" / "meta.json").read_text())
    assert meta["files"] == 4 and meta["tokenizer"]["num_codebooks"] == 8

    recipe = str(ROOT / "recipes" / "prior_tiny.yaml")
    sets = ["optim.max_steps=3", "validation.every=3", "checkpoint.every=3", "log.progress=false"]
    args = ["train", recipe, "--set", "data.train=tok", "--run-dir", "run"]
    for s in sets:
        args += ["--set", s]
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = _cli("export", "run", "prior", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # the export records whose codes the prior models
    config = json.loads((tmp_path / "prior" / "config.json").read_text())["config"]
    assert config["tokenizer_id"] == meta["tokenizer"]["model_id"]
    # ... and a context no longer than the 2 s windows it trained on (150 frames + 7 delay
    # steps), not the recipe's block_size of 256 (positions past the window were never trained)
    assert config["block_size"] == 157

    res = _cli(
        "generate", "--prior", "prior", "--prompt", str(audio / "clip0.wav"),
        "--prompt-seconds", "1", "--seconds", "1.5", "-n", "2", "-o", "gen", cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for i in range(2):
        wav, sr = sf.read(tmp_path / "gen" / f"sample_{i}.wav")
        assert sr == 24000 and len(wav) == round(1.5 * 75) * 320
        assert np.isfinite(wav).all()
    codes = np.load(tmp_path / "gen" / "sample_0.npy", allow_pickle=False)
    assert codes.shape == (8, round(1.5 * 75))
    # a second run does not overwrite without --force
    res = _cli("generate", "--prior", "prior", "--seconds", "0.5", "-o", "gen", cwd=tmp_path)
    assert res.returncode == 1 and "already exists" in res.stderr
    # the bundled default tokenizer finds its bundled prior; a model folder has none
    res = _cli("generate", "--seconds", "1", "-o", "bundled", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "bundled" / "sample_0.wav").exists()
    model_dir = str(ROOT / "audiotok" / "pretrained" / "default")
    res = _cli("generate", "--seconds", "1", "--model", model_dir, cwd=tmp_path)
    assert res.returncode == 1 and "--prior" in res.stderr and "Traceback" not in res.stderr

    res = _cli("eval-prior", "prior", "tok", "-o", "report", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["files"] == 4 and report["raw_kbps"] == 6.0
    assert "| prior |" in res.stdout
