"""Fixtures of the training tests: synthetic WAV folders and a tiny recipe."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 16000

#: A tiny SoundStream recipe: a few thousand parameters, 0.1 s crops, adversary from step 2.
TINY: dict[str, Any] = {
    "model": {
        "family": "soundstream",
        "config": {
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "ratios": [2, 4],
            "encoder_channels": 4,
            "latent_dim": 8,
            "decoder": "istft",
            "istft_hidden": 16,
            "istft_layers": 1,
            "quantizer": {
                "type": "residual",
                "num_codebooks": 2,
                "dropout": 0.5,
                "stage": {"type": "ema", "codebook_size": 16, "kmeans_init": True},
            },
        },
    },
    "data": {"segment_seconds": 0.1, "batch_size": 2, "examples_per_epoch": 8},
    "optim": {"lr": 1e-3, "warmup_steps": 2, "max_steps": 6},
    "discriminator": {
        "msstft": {"n_ffts": [128, 64], "filters": 4, "max_filters": 8},
        "mpd": {"periods": [2, 3], "filters": 2, "max_filters": 8, "num_layers": 2},
        "start_step": 2,
    },
    "loss": {
        "mel_options": {"n_ffts": [64, 128], "n_mels": [10, 20]},
        "stft_options": {"n_ffts": [64, 128]},
    },
    "checkpoint": {"every": 3, "keep_last": 5},
    "log": {"every": 1, "tensorboard": False, "progress": False},
    "validation": {"every": 0},
    "seed": 3,
}


def _write_wavs(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    for i in range(count):
        f0 = rng.uniform(100.0, 2000.0)
        wav = 0.4 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{i}.wav", wav.astype(np.float32), SAMPLE_RATE)


@pytest.fixture(scope="session")
def wav_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(train, dev)`` folders of short synthetic 16 kHz mono WAVs (tones + noise)."""
    root = tmp_path_factory.mktemp("wavs")
    _write_wavs(root / "train", 6, seed=1)
    _write_wavs(root / "dev", 2, seed=2)
    return root / "train", root / "dev"


@pytest.fixture
def tiny_recipe(wav_dirs: tuple[Path, Path], tmp_path: Path) -> dict[str, Any]:
    """A fresh copy of :data:`TINY` pointing at the WAV folders and ``tmp_path/run``."""
    recipe = copy.deepcopy(TINY)
    recipe["data"]["train"] = str(wav_dirs[0])
    recipe["data"]["dev"] = str(wav_dirs[1])
    recipe["run_dir"] = str(tmp_path / "run")
    return recipe
