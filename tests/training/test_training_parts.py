"""The trainer's parts: sampler, LR schedule, balancer, code statistics, metrics log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from audiotok.training.balancer import Balancer
from audiotok.training.logging import MetricsLogger, window_code_stats
from audiotok.training.optim import WarmupSchedule
from audiotok.training.sampler import ResumableSampler
from audiotok.training.tasks import code_counts


def test_sampler_is_seeded_sharded_and_skippable() -> None:
    s = ResumableSampler(10, seed=4)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(e0) == list(range(10)) and e0 != e1
    s.set_epoch(0)
    assert list(s) == e0  # a function of (seed, epoch) only
    s.set_epoch(0, skip=4)
    assert list(s) == e0[4:] and len(s) == 6
    shards = [ResumableSampler(11, seed=4, rank=r, world_size=3) for r in range(3)]
    parts = [sh.indices() for sh in shards]
    assert all(len(p) == 3 for p in parts)  # 11 // 3 with drop_last
    flat = [i for p in parts for i in p]
    assert len(set(flat)) == 9
    padded = ResumableSampler(5, world_size=2, rank=1, shuffle=False, drop_last=False)
    assert padded.indices() == [1, 3, 0]


def test_warmup_then_cosine() -> None:
    f = WarmupSchedule(warmup_steps=4, max_steps=14, schedule="cosine", min_lr_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(14) == pytest.approx(0.1) and f(100) == pytest.approx(0.1)
    values = [f(s) for s in range(4, 15)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert WarmupSchedule(0, 10, "constant")(7) == 1.0


def test_balancer_ignores_loss_scale() -> None:
    # the share of each loss in the update is set by its weight, not by its magnitude
    y = torch.randn(2, 1, 50, requires_grad=True)
    target = torch.randn(2, 1, 50)

    def grad(scale: float) -> torch.Tensor:
        b = Balancer({"a": 1.0, "b": 3.0})
        losses = {"a": scale * (y - target).abs().mean(), "b": (y**2).mean()}
        g, norms = b.gradient(losses, y)
        assert set(norms) == {"a", "b"}
        return g

    assert torch.allclose(grad(1.0), grad(1000.0), atol=1e-6)
    b = Balancer({"a": 1.0})
    g, _ = b.gradient({"a": 50.0 * y.square().sum()}, y)
    assert g.flatten(1).norm(dim=1).mean() == pytest.approx(1.0, rel=1e-4)
    assert b.state_dict()["count"] == {"a": 1.0}


def test_code_counts_skip_dropped_stages() -> None:
    codes = torch.tensor([[[0, 1, 1], [2, -1, -1]]])  # (B=1, K=2, T'=3)
    counts = code_counts(codes, 4)
    assert counts.tolist() == [[1, 2, 0, 0], [0, 0, 1, 0]]
    stats = window_code_stats(counts)
    assert stats["usage/0"] == 0.5 and stats["usage/1"] == 0.25
    p = torch.tensor([1 / 3, 2 / 3])
    assert stats["perplexity/0"] == pytest.approx(2 ** float(-(p * p.log2()).sum()))
    assert stats["perplexity/1"] == pytest.approx(1.0)
    assert math.isclose(stats["usage"], 0.375)


def test_metrics_log_is_truncated_on_resume(tmp_path: Path) -> None:
    log = MetricsLogger(tmp_path, total_steps=5, tensorboard=False, progress=False)
    for step in range(1, 6):
        log.log(step, "train", {"loss": torch.tensor(float(step))})
    log.close()
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "spl')  # a line torn by a kill mid-write
    again = MetricsLogger(tmp_path, total_steps=5, start_step=3, tensorboard=False, progress=False)
    again.log(4, "train", {"loss": 40.0})
    again.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]
    quiet = MetricsLogger(tmp_path / "other", total_steps=1, enabled=False)
    quiet.log(1, "train", {"loss": 1.0})
    assert not (tmp_path / "other").exists()


class _SpyDiscriminator(torch.nn.Module):
    """Records what it is shown; one logit per item, one feature map."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, wav: torch.Tensor):
        self.seen.append(wav.detach().clone())
        feat = wav * self.scale
        return [feat.mean(dim=(1, 2))], [[feat]]


@pytest.mark.parametrize("disc_segment", [None, 400])
def test_discriminators_see_matching_crops(disc_segment: int | None) -> None:
    from audiotok.training.config import LossConfig
    from audiotok.training.tasks import CodecTask
    from audiotok.training.trainer import build_model

    torch.manual_seed(0)
    quantizer = {
        "type": "residual",
        "num_codebooks": 2,
        "stage": {"type": "vq", "codebook_size": 16},
    }
    codec = build_model(
        "soundstream",
        {
            "sample_rate": 16000,
            "ratios": [2, 4],
            "encoder_channels": 4,
            "latent_dim": 8,
            "quantizer": quantizer,
        },
    )
    spy = _SpyDiscriminator()
    loss = LossConfig(
        mel_options={"n_ffts": [64, 128], "n_mels": [10, 20]}, stft_options={"n_ffts": [64, 128]}
    )
    task = CodecTask(codec, spy, loss, disc_segment=disc_segment)
    batch = torch.randn(3, 1, 1600)
    out = task.generator_step(batch, step=0)
    task.discriminator_step(batch, out, step=0)
    length = disc_segment or batch.shape[-1]
    # generator step: real (feature targets) then fake; discriminator step: [real; fake]
    real_g, fake_g, both_d = spy.seen
    assert real_g.shape == fake_g.shape == (3, 1, length)
    assert both_d.shape == (6, 1, length)
    for real, fake in ((real_g, fake_g), both_d.chunk(2)):
        for i in range(3):
            # the real crop is a window of item i; the fake crop is the same window of its
            # reconstruction
            starts = [
                s
                for s in range(batch.shape[-1] - length + 1)
                if torch.equal(batch[i, :, s : s + length], real[i])
            ]
            assert len(starts) == 1
            s = starts[0]
            assert torch.allclose(out.fake[i, :, s : s + length], fake[i])
    if disc_segment is not None:  # offsets are random, not always the start
        offsets = {
            next(s for s in range(1201) if torch.equal(batch[i, :, s : s + 400], real_g[i]))
            for i in range(3)
        }
        assert offsets != {0}


def test_spectrum_loss_trains_the_decoders_frames_and_needs_an_istft_decoder(
    tiny_recipe: dict,
) -> None:
    import copy

    from audiotok.errors import UserError
    from audiotok.training.config import config_from_dict
    from audiotok.training.trainer import train

    recipe = copy.deepcopy(tiny_recipe)
    recipe["loss"].update(spectrum=5.0, mel=0.0, stft=0.0, adversarial=0.0, feature_matching=0.0)
    recipe["discriminator"]["enabled"] = False
    recipe["optim"].update(max_steps=12, lr=3e-3)
    train(config_from_dict(recipe))
    rows = [json.loads(x) for x in (Path(recipe["run_dir"]) / "metrics.jsonl").open()]
    spectrum = [r["spectrum"] for r in rows if r["split"] == "train"]
    assert len(spectrum) == 12 and all(math.isfinite(v) for v in spectrum)
    # the only loss: it must fall (the frames move towards the input's log-magnitude)
    assert sum(spectrum[-3:]) < 0.8 * sum(spectrum[:3])

    both = copy.deepcopy(recipe)
    both["loss"]["latent_harmonics"] = 1.0
    both["run_dir"] = recipe["run_dir"] + "_harmonics"
    both["optim"]["max_steps"] = 3
    train(config_from_dict(both))
    rows = [json.loads(x) for x in (Path(both["run_dir"]) / "metrics.jsonl").open()]
    fractions = [r["latent_harmonics"] for r in rows if r["split"] == "train"]
    assert len(fractions) == 3 and all(0.0 < v < 10.0 for v in fractions)

    bad = copy.deepcopy(tiny_recipe)
    bad["model"]["config"]["decoder"] = "seanet"
    bad["loss"]["spectrum"] = 1.0
    bad["run_dir"] = recipe["run_dir"] + "_seanet"
    with pytest.raises(UserError, match="loss.spectrum needs"):
        train(config_from_dict(bad))


def test_phase_loss_trains_alone_and_checks_its_options(tiny_recipe: dict) -> None:
    import copy

    from audiotok.errors import UserError
    from audiotok.training.config import config_from_dict
    from audiotok.training.trainer import train

    recipe = copy.deepcopy(tiny_recipe)
    recipe["loss"].update(phase=2.0, mel=0.0, stft=0.0, adversarial=0.0, feature_matching=0.0)
    recipe["loss"]["phase_options"] = {"n_ffts": [256, 128]}
    recipe["discriminator"]["enabled"] = False
    recipe["optim"].update(max_steps=12, lr=3e-3)
    train(config_from_dict(recipe))
    rows = [json.loads(x) for x in (Path(recipe["run_dir"]) / "metrics.jsonl").open()]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert len(train_rows) == 12 and all(0.0 <= r["phase"] <= 2.0 for r in train_rows)
    # it is what the generator minimises (with the quantizer's own loss)
    for r in train_rows:
        assert r["total"] == pytest.approx(2.0 * r["phase"] + r["commitment"], rel=1e-4)
    recipe["loss"]["phase_options"] = {"n_fft": 256}
    with pytest.raises(UserError, match="phase_options"):
        config_from_dict(recipe)


def test_harmonic_ripple_peaks_on_the_harmonics_and_drops_the_envelope() -> None:
    from audiotok.training.latent_probes import harmonic_ripple

    sr, hop, f0 = 16000, 160, 250.0  # n_fft 640: 25 Hz bins, harmonics every 10 bins
    t = torch.arange(sr) / sr
    voice = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 8))
    voice = voice + 1e-3 * torch.randn(t.shape, generator=torch.Generator().manual_seed(0))
    ripple = harmonic_ripple(voice[None, None], hop, sr)  # (frames, bins 1..80)
    mean = ripple[10:-10].mean(0)
    harmonic_bins = [round(f0 * k / 25) - 1 for k in range(1, 8)]  # column 0 is bin 1
    between = [b + 5 for b in harmonic_bins[:-1]]
    assert mean[harmonic_bins].min() > mean[between].max() + 1.0
    # a pure gain is envelope, not ripple (above the magnitude floor)
    louder = harmonic_ripple(4 * voice[None, None], hop, sr)
    torch.testing.assert_close(louder, ripple, rtol=0, atol=1e-3)


def test_unexplained_fraction_is_cross_fitted_and_differentiable() -> None:
    from audiotok.training.latent_probes import unexplained_fraction

    torch.manual_seed(0)
    target = torch.randn(8 * 50, 12)
    mixing = torch.randn(12, 16)
    carried = (target @ mixing).reshape(8, 50, 16) + 0.01 * torch.randn(8, 50, 16)
    assert unexplained_fraction(carried, target) < 0.01
    noise = torch.randn(8, 50, 16, requires_grad=True)
    frac = unexplained_fraction(noise, target)
    assert frac > 0.95  # cross-fitting: unrelated features explain nothing
    frac.backward()
    assert noise.grad is not None and noise.grad.abs().sum() > 0
