"""``loss.pitch``: a pitch head on the quantized latent, trained to read a pitch salience
curve, which makes the codes carry pitch; and the salience it reads."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.errors import UserError
from audiotok.training.config import config_from_dict
from audiotok.training.latent_probes import (
    head_unexplained,
    pitch_head_loss,
    pitch_salience,
)
from audiotok.training.trainer import train

SR, HOP = 24000, 320
CANDIDATES = 60.0 * 8.0 ** (torch.arange(64) / 63)  # the salience's f0 grid, 60-480 Hz


def _voice(f0: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR) // HOP * HOP) / SR
    wav = sum(math.exp(-0.15 * h) * torch.sin(2 * math.pi * h * f0 * t + h) for h in range(1, 40))
    return 0.1 * wav[None, None]


@pytest.mark.parametrize("f0", [110.0, 150.0, 220.0])
def test_salience_scores_the_pitch_above_its_suboctave_and_noise(f0: float) -> None:
    s = pitch_salience(_voice(f0), HOP, SR)[0, 10:-10].mean(0)  # (64,)
    at = int((CANDIDATES - f0).abs().argmin())
    assert s[at] > s.quantile(0.9)  # a peak at f0 (2 * f0 may tie: an octave is allowed)
    below = CANDIDATES < 0.55 * f0
    if below.any():  # half the pitch lands every other harmonic in a valley
        half = int((CANDIDATES - f0 / 2).abs().argmin())
        assert s[half] < s[at] - 0.5
    noise = 0.1 * torch.randn(1, 1, SR // HOP * HOP, generator=torch.Generator().manual_seed(0))
    assert pitch_salience(noise, HOP, SR)[0, 10:-10].mean(0).max() < 0.3 * s[at]


def test_salience_follows_a_glide() -> None:
    # 120 -> 240 Hz over 2 s: the frames' peak candidate rises with it (within 8 %)
    t = torch.arange(2 * SR) / SR
    f = 120.0 * 2.0 ** (t / 2.0)
    phase = 2 * math.pi * torch.cumsum(f, 0) / SR
    wav = 0.1 * sum(math.exp(-0.15 * h) * torch.sin(h * phase) for h in range(1, 16))
    s = pitch_salience(wav[None, None], HOP, SR)[0]  # (150, 64)
    for frame in (20, 75, 130):
        truth = float(f[frame * HOP + HOP // 2])
        top = CANDIDATES[s[frame].topk(2).indices]
        ratios = (top / truth).tolist()
        assert any(abs(r - 1) < 0.08 or abs(r - 2) < 0.16 for r in ratios), (truth, top)


def test_head_unexplained_is_one_for_the_mean_and_zero_for_the_truth() -> None:
    target = torch.randn(4, 30, 64)
    assert float(head_unexplained(target, target)) == 0.0
    mean = target.reshape(-1, 64).mean(0).expand_as(target)
    assert abs(float(head_unexplained(mean, target)) - 1.0) < 1e-5


def test_pitch_head_is_off_the_audio_path_and_its_loss_reaches_the_encoder() -> None:
    kw = dict(ratios=(2, 4, 5, 8), encoder="spectral", encoder_hidden=16, encoder_layers=1)
    kw.update(latent_dim=8, istft_hidden=16, istft_layers=1)
    torch.manual_seed(0)
    plain = SoundStream(SoundStreamConfig(**kw)).eval()
    torch.manual_seed(0)
    headed = SoundStream(SoundStreamConfig(pitch_head=32, **kw)).eval()
    missing = set(plain.load_state_dict(headed.state_dict(), strict=False).unexpected_keys)
    assert missing and all(k.startswith("pitch_head.") for k in missing)
    wav = _voice(150.0, 0.5)
    with torch.no_grad():
        a, b = plain(wav), headed(wav)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.audio, b.audio)
    headed.train()
    out = headed(wav)
    loss = pitch_head_loss(headed, out.quantized, wav)
    assert 0.0 < loss.item() < 50.0
    loss.backward()
    grads = [p.grad for p in headed.encoder.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    with pytest.raises(ValueError, match="pitch_head"):
        SoundStreamConfig(pitch_head=-1)


def test_loss_pitch_trains_and_needs_a_pitch_head(
    tiny_recipe: dict, capsys: pytest.CaptureFixture
) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["model"]["config"].update(pitch_head=16, ratios=[2, 4, 5, 4])  # 25 Hz bins
    recipe["loss"]["pitch"] = 1.0
    recipe["optim"]["max_steps"] = 3
    recipe["validation"] = {"every": 3, "num_batches": 1}
    train(config_from_dict(recipe))
    rows = [json.loads(x) for x in (Path(recipe["run_dir"]) / "metrics.jsonl").open()]
    train_rows = [r["pitch"] for r in rows if r["split"] == "train"]
    assert len(train_rows) == 3 and all(0.0 <= v < 50.0 for v in train_rows)
    assert any("pitch" in r for r in rows if r["split"] == "val")
    assert "steps 0-3 on 6 files, 0.0 h" in capsys.readouterr().err  # what it trains on

    bad = copy.deepcopy(tiny_recipe)
    bad["loss"]["pitch"] = 1.0
    bad["run_dir"] = recipe["run_dir"] + "_nohead"
    with pytest.raises(UserError, match="loss.pitch needs a codec with a pitch head"):
        train(config_from_dict(bad))
    bad["model"]["config"]["pitch_head"] = 16  # hop 8 at 16 kHz: 500 Hz bins
    with pytest.raises(UserError, match="500 Hz bins, too coarse for pitch"):
        train(config_from_dict(bad))
