"""Checkpoints: exact resume, keep-last-N, weights_only loading, refusing to clobber a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from audiotok.errors import UserError
from audiotok.training import checkpoint as ckpt
from audiotok.training.config import config_from_dict, load_config
from audiotok.training.trainer import train


def _run(recipe: dict[str, Any], **kwargs: Any):
    return train(config_from_dict(recipe), **kwargs)


def _assert_same(a: Any, b: Any, where: str = "") -> None:
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"differs at {where}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"keys differ at {where}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _train_losses(run_dir: Path) -> list[tuple[int, float, float | None]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["mel"], r.get("disc")) for r in rows if r["split"] == "train"]


@pytest.mark.parametrize("disc_crop", [None, 0.05], ids=["whole", "cropped"])
def test_resume_continues_the_run_exactly(
    tiny_recipe: dict[str, Any], tmp_path: Path, disc_crop: float | None
) -> None:
    # 4 batches per epoch: the checkpoint at step 3 is mid-epoch, steps 4-6 cross an epoch;
    # the discriminator starts at step 2, so it is trained on both sides of the checkpoint;
    # "cropped" draws the discriminators' random windows from the checkpointed RNG
    tiny_recipe["discriminator"]["segment_seconds"] = disc_crop
    straight = dict(tiny_recipe, run_dir=str(tmp_path / "straight"))
    full = _run(straight)
    assert full.step == 6

    broken = dict(tiny_recipe, run_dir=str(tmp_path / "broken"))
    first = _run(broken, stop_at=3)  # "killed" right after its step-3 checkpoint
    assert first.step == 3 and first.checkpoint.name == "step_00000003.pt"
    resumed = _run(broken, resume=True)
    assert resumed.step == 6

    a = ckpt.load_checkpoint(full.checkpoint)
    b = ckpt.load_checkpoint(resumed.checkpoint)
    for key in ("model", "discriminator", "optimizer", "disc_optimizer", "scheduler", "rng"):
        _assert_same(a[key], b[key], key)
    assert (a["step"], a["epoch"], a["batch_in_epoch"]) == (
        b["step"],
        b["epoch"],
        b["batch_in_epoch"],
    )
    assert a["epoch"] == 1 and a["batch_in_epoch"] == 2
    # the discriminator really trained: it moved away from its initial weights
    assert a["disc_optimizer"]["state"], "discriminator optimiser never stepped"
    # the resumed log reads as one run with the same losses
    assert _train_losses(tmp_path / "broken") == _train_losses(tmp_path / "straight")


def test_resume_from_an_explicit_checkpoint(tiny_recipe: dict[str, Any]) -> None:
    tiny_recipe["optim"]["max_steps"] = 3
    tiny_recipe["checkpoint"]["every"] = 1
    done = _run(tiny_recipe)
    step2 = ckpt.checkpoint_path(tiny_recipe["run_dir"], 2)
    again = _run(tiny_recipe, resume=str(step2))
    assert again.step == 3
    _assert_same(
        ckpt.load_checkpoint(done.checkpoint)["model"],
        ckpt.load_checkpoint(again.checkpoint)["model"],
    )


def test_keep_last_and_weights_only(tiny_recipe: dict[str, Any]) -> None:
    tiny_recipe["optim"]["max_steps"] = 4
    tiny_recipe["checkpoint"] = {"every": 1, "keep_last": 2}
    tiny_recipe["discriminator"]["start_step"] = 0
    tiny_recipe["loss"]["balancer"] = True
    result = _run(tiny_recipe)
    run_dir = Path(tiny_recipe["run_dir"])
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["step_00000003.pt", "step_00000004.pt"]  # no temporary files either
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert state["step"] == 4 and state["config"]["seed"] == tiny_recipe["seed"]
    assert state["task"]["balancer"]["count"], "balancer averages are checkpointed"
    assert (run_dir / "config.yaml").is_file()


def test_refuses_to_overwrite_or_resume_nothing(tiny_recipe: dict[str, Any]) -> None:
    with pytest.raises(UserError, match="nothing to resume"):
        _run(tiny_recipe, resume=True)
    tiny_recipe["optim"]["max_steps"] = 1
    _run(tiny_recipe)
    with pytest.raises(UserError, match="already has checkpoints"):
        _run(tiny_recipe)


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_corrupt_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "step_00000001.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(bad)
    with pytest.raises(UserError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_resume_from_takes_the_recipes_lr_and_betas(
    tiny_recipe: dict[str, Any], tmp_path: Path
) -> None:
    # a fine-tuning phase (e.g. turning the adversary on at a lower lr) resumes from a
    # checkpoint with a new recipe: the recipe's lr, schedule and betas must win over the
    # checkpoint's, for the generator and for the discriminator
    first = _run(dict(tiny_recipe, run_dir=str(tmp_path / "a")), stop_at=3)
    tuned = json.loads(json.dumps(tiny_recipe))
    tuned["run_dir"] = str(tmp_path / "b")
    tuned["optim"].update(lr=2.5e-4, schedule="constant", betas=[0.7, 0.95], max_steps=5)
    tuned["discriminator"].update(lr=1.5e-4, betas=[0.6, 0.9])
    done = _run(tuned, resume=str(first.checkpoint))
    assert done.step == 5
    state = ckpt.load_checkpoint(done.checkpoint)
    for key, lr, betas in (
        ("optimizer", 2.5e-4, (0.7, 0.95)),
        ("disc_optimizer", 1.5e-4, (0.6, 0.9)),
    ):
        group = state[key]["param_groups"][0]
        assert group["lr"] == pytest.approx(lr), key  # constant schedule after warm-up
        assert tuple(group["betas"]) == pytest.approx(betas), key
    # the schedule's state is the step alone: lr, schedule and betas come from the recipe
    assert state["scheduler"] == {"step": 5}


def test_step_lr_reads_old_lambda_lr_checkpoints() -> None:
    # checkpoints written before StepLR (the bundled default's kept one) hold a LambdaLR state
    from audiotok.training.optim import StepLR, WarmupSchedule

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = StepLR(opt, WarmupSchedule(10, 100, "cosine", 0.1), 1e-3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # warm-up step 0: 1/10
    sched.load_state_dict({"last_epoch": 50, "base_lrs": [1e-3], "_step_count": 51})
    assert sched.last_step == 50
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * WarmupSchedule(10, 100)(50))
    sched.retune(WarmupSchedule(0, 100, "constant"), 5e-4, (0.5, 0.9))
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert opt.param_groups[0]["betas"] == (0.5, 0.9)
    sched.step()
    assert sched.state_dict() == {"step": 51}


def test_tiny_debug_recipe_resumes_exactly_on_synthetic_data(tmp_path: Path) -> None:
    # the recipe as shipped (synthetic data, no corpus), shortened: 3 batches per epoch, so
    # the step-2 checkpoint is mid-epoch and steps 3-5 cross into epoch 1
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny_debug.yaml"
    sets = [
        "optim.max_steps=5",
        "data.examples_per_epoch=12",
        "discriminator.start_step=1",
        "checkpoint.every=2",
        "validation.every=0",
        "log.every=1",
        "log.progress=false",
        "log.tensorboard=false",
    ]
    straight = train(load_config(recipe, [*sets, f"run_dir={tmp_path / 'straight'}"]))
    broken_cfg = load_config(recipe, [*sets, f"run_dir={tmp_path / 'broken'}"])
    assert broken_cfg.data.train == "synthetic"
    assert train(broken_cfg, stop_at=2).step == 2
    resumed = train(broken_cfg, resume=True)
    assert straight.step == resumed.step == 5
    a = ckpt.load_checkpoint(straight.checkpoint)
    b = ckpt.load_checkpoint(resumed.checkpoint)
    for key in ("model", "discriminator", "optimizer", "disc_optimizer", "rng"):
        _assert_same(a[key], b[key], key)
    assert (a["epoch"], a["batch_in_epoch"]) == (b["epoch"], b["batch_in_epoch"]) == (1, 2)
    assert _train_losses(tmp_path / "broken") == _train_losses(tmp_path / "straight")
