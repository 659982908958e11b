"""Collapse shows up early: mel at 1/2/4 codebooks and the latent's effective dimension in
validation; bf16 autocast on CPU when the recipe asks for it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from audiotok.training.config import config_from_dict
from audiotok.training.latent_probes import participation_ratio
from audiotok.training.tasks import CodecTask
from audiotok.training.trainer import Trainer, train


def test_participation_ratio_counts_effective_dimensions() -> None:
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(20000, 8, generator=g)
    assert participation_ratio(iso) == pytest.approx(8.0, rel=0.05)
    # 3 strong directions embedded in 16 dims, the rest tiny noise: ~3
    basis = torch.linalg.qr(torch.randn(16, 16, generator=g))[0][:3]
    low = torch.randn(20000, 3, generator=g) @ basis + 1e-3 * torch.randn(20000, 16, generator=g)
    assert participation_ratio(low) == pytest.approx(3.0, rel=0.05)
    line = torch.randn(500, 1, generator=g) * torch.ones(1, 32)
    assert participation_ratio(line) == pytest.approx(1.0, abs=1e-6)
    # layout-agnostic: (B, T, D) gives the same as the flattened vectors
    assert participation_ratio(iso.reshape(40, 500, 8)) == pytest.approx(participation_ratio(iso))


def test_validation_reports_mel_at_fewer_codebooks(tiny_recipe: dict[str, Any]) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    quant = recipe["model"]["config"]["quantizer"]
    quant["num_codebooks"] = 8
    recipe["precision"] = "fp32"  # the references below run in fp32; "auto" is bf16 on AMX CPUs
    trainer = Trainer(config_from_dict(recipe))
    task: CodecTask = trainer.task
    batch = torch.randn(2, 1, 1600) * 0.1
    codec = task.codec.eval()  # run_validation switches to eval mode first
    metrics, _ = task.validation_step(batch)
    assert {"mel", "mel@1", "mel@2", "mel@4", "latent_pr"} <= set(metrics)
    assert "mel@8" not in metrics
    for k in (1, 2, 4):
        with torch.no_grad():
            expected = float(task.mel(codec(batch, num_codebooks=k).audio, batch))
        assert metrics[f"mel@{k}"] == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        latent = codec.encode_latent(codec._pad(batch)).transpose(1, 2)
    assert metrics["latent_pr"] == pytest.approx(participation_ratio(latent), rel=1e-5)
    # harmonics: what the quantized latent leaves unexplained of the frames' ripple
    from audiotok.training.latent_probes import harmonic_ripple, unexplained_fraction

    with torch.no_grad():
        quantized = codec(batch).quantized
    ripple = harmonic_ripple(codec._pad(batch), codec.hop_length, codec.sample_rate)
    expected = float(unexplained_fraction(quantized, ripple))
    assert metrics["harmonics"] == pytest.approx(expected, rel=1e-4)
    # resid@k: the latent's residual after k stages relative to its norm, from the codes
    quantizer = codec.quantizer
    with torch.no_grad():
        codes = quantizer.encode(latent)
        for k in (1, 2, 4, 8):
            left = latent - quantizer.decode(codes[..., :k])
            assert metrics[f"resid@{k}"] == pytest.approx(
                float(left.norm() / latent.norm()), rel=1e-5
            )


def test_validation_metrics_reach_the_log(tiny_recipe: dict[str, Any]) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["validation"] = {"every": 3, "num_batches": 1, "num_audio_samples": 0}
    recipe["optim"]["max_steps"] = 3
    run_dir = Path(recipe["run_dir"])
    train(config_from_dict(recipe))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["split"] == "val"]
    assert val and {"mel@1", "latent_pr"} <= set(val[-1])


def test_cpu_bf16_autocast_when_asked(tiny_recipe: dict[str, Any]) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["precision"] = "bf16"
    recipe["device"] = "cpu"
    trainer = Trainer(config_from_dict(recipe))
    assert trainer.precision == "bf16"
    with trainer._autocast():
        y = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert y.dtype == torch.bfloat16
    # the codec still returns fp32 audio and finite losses under it
    out = trainer.task.generator_step(torch.randn(2, 1, 1600) * 0.1, step=3)
    assert out.fake.dtype == torch.float32
    assert all(torch.isfinite(v) for v in out.losses.values())


def test_cpu_fp32_by_default_without_native_bf16(
    tiny_recipe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import audiotok.training.trainer as trainer_module

    recipe = copy.deepcopy(tiny_recipe)
    recipe["device"] = "cpu"
    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda n=native: n)
        assert Trainer(config_from_dict(recipe)).precision == expected
