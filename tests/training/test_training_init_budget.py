"""``init_from`` (a fresh run from trained weights) and ``optim.max_seconds`` (a wall-clock
budget that ends a run with a checkpoint that ``--resume`` continues)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from audiotok.errors import UserError
from audiotok.training.checkpoint import list_checkpoints, load_checkpoint
from audiotok.training.config import config_from_dict
from audiotok.training.export import export_checkpoint
from audiotok.training.trainer import Trainer


def _run(recipe: dict[str, Any], steps: int, **kw: Any) -> Trainer:
    recipe = copy.deepcopy(recipe)
    recipe["optim"]["max_steps"] = steps
    trainer = Trainer(config_from_dict(recipe), **kw)
    trainer.fit()
    return trainer


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_checkpoint_and_export(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    first = _run(tiny_recipe, 3)
    ckpt = first.last_checkpoint
    state = load_checkpoint(ckpt)
    fresh = copy.deepcopy(tiny_recipe)
    fresh["run_dir"] = str(tmp_path / "tuned")
    fresh["seed"] = 11  # a different seed would give other initial weights
    # from a checkpoint: generator and discriminator, but a new optimiser at step 0
    fresh["init_from"] = str(ckpt)
    tuned = Trainer(config_from_dict(fresh))
    assert tuned.step == 0 and tuned.opt_g.state_dict()["state"] == {}
    assert _same(tuned.model.state_dict(), state["model"])
    assert _same(tuned.disc.state_dict(), state["discriminator"])
    # a run folder means its latest checkpoint
    fresh["init_from"] = str(Path(tiny_recipe["run_dir"]))
    assert _same(Trainer(config_from_dict(fresh)).model.state_dict(), state["model"])
    # from an export: the generator only; the discriminator starts from the seed
    folder = export_checkpoint(ckpt, tmp_path / "export")
    fresh["init_from"] = str(folder)
    tuned = Trainer(config_from_dict(fresh))
    assert _same(tuned.model.state_dict(), state["model"])
    assert not _same(tuned.disc.state_dict(), state["discriminator"])
    # an export with --discriminator carries it along; one that does not fit starts fresh
    export_checkpoint(ckpt, tmp_path / "with_disc", discriminator=True)
    fresh["init_from"] = str(tmp_path / "with_disc")
    assert _same(Trainer(config_from_dict(fresh)).disc.state_dict(), state["discriminator"])
    other = copy.deepcopy(fresh)
    other["run_dir"] = str(tmp_path / "other_disc")
    other["discriminator"]["msstft"]["filters"] = 2 * other["discriminator"]["msstft"]["filters"]
    with pytest.warns(RuntimeWarning, match="starts fresh"):
        Trainer(config_from_dict(other))
    tuned.fit()  # and it trains from there
    assert tuned.step == tuned.cfg.optim.max_steps
    assert not _same(tuned.model.state_dict(), state["model"])


def test_init_from_refuses_what_does_not_fit(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    ckpt = _run(tiny_recipe, 1).last_checkpoint
    other = copy.deepcopy(tiny_recipe)
    other["run_dir"] = str(tmp_path / "other")
    other["init_from"] = str(ckpt)
    other["model"]["config"]["latent_dim"] = 2 * other["model"]["config"]["latent_dim"]
    with pytest.raises(UserError, match="does not fit the recipe's model"):
        Trainer(config_from_dict(other))
    other = copy.deepcopy(tiny_recipe)
    other["run_dir"] = str(tmp_path / "other2")
    other["init_from"] = str(tmp_path / "missing")
    with pytest.raises(UserError, match="^init_from: .*missing"):
        Trainer(config_from_dict(other))


def test_resume_ignores_init_from(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    donor = copy.deepcopy(tiny_recipe)
    donor["run_dir"] = str(tmp_path / "donor")
    donor_ckpt = _run(donor, 1).last_checkpoint
    run = _run(tiny_recipe, 2)
    recipe = copy.deepcopy(tiny_recipe)
    recipe["init_from"] = str(donor_ckpt)
    resumed = Trainer(config_from_dict(recipe), resume=True)
    assert resumed.step == 2
    assert _same(resumed.model.state_dict(), load_checkpoint(run.last_checkpoint)["model"])


def test_max_seconds_stops_with_a_checkpoint_and_resume_continues(
    tiny_recipe: dict[str, Any],
) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["optim"]["max_seconds"] = 1e-6  # spent within the first step
    recipe["checkpoint"]["every"] = 100
    stopped = _run(recipe, 6)
    assert stopped.step == 1
    assert [p.name for p in list_checkpoints(recipe["run_dir"])] == ["step_00000001.pt"]
    rows = [json.loads(x) for x in (Path(recipe["run_dir"]) / "metrics.jsonl").open()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [1]
    # without the budget, --resume runs on to max_steps
    del recipe["optim"]["max_seconds"]
    resumed = _run(recipe, 6, resume=True)
    assert resumed.step == 6


def test_max_seconds_must_be_positive(tiny_recipe: dict[str, Any]) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["optim"]["max_seconds"] = 0
    with pytest.raises(UserError, match="max_seconds"):
        config_from_dict(recipe)


def test_freeze_keeps_codes_and_trains_the_rest(
    tiny_recipe: dict[str, Any], tmp_path: Path
) -> None:
    first = _run(tiny_recipe, 3)
    start = load_checkpoint(first.last_checkpoint)["model"]
    tuned = copy.deepcopy(tiny_recipe)
    tuned["run_dir"] = str(tmp_path / "decoder_only")
    tuned["init_from"] = str(first.last_checkpoint)
    tuned["freeze"] = ["encoder", "quantizer"]
    trainer = _run(tuned, 4)
    end = trainer.model.state_dict()
    # every encoder and quantizer tensor, EMA codebooks and counts included, is untouched
    kept = [k for k in start if k.startswith(("encoder.", "quantizer."))]
    assert kept and all(torch.equal(start[k], end[k]) for k in kept)
    assert any(not torch.equal(start[k], end[k]) for k in start if k.startswith("decoder."))
    # the optimiser never held a frozen parameter
    held = {id(p) for g in trainer.opt_g.param_groups for p in g["params"]}
    assert not held & {id(p) for p in trainer.model.encoder.parameters()}
    # in a step: codebook stages in eval mode, the residual quantizer still drawing dropout
    trainer.train_step(next(iter(torch.utils.data.DataLoader(trainer.train_set, batch_size=2))))
    q = trainer.model.quantizer
    assert q.training and not any(s.training for s in q.stages)
    assert not trainer.model.encoder.training and trainer.model.decoder.training
    assert q.stage_counts(64, 2, torch.device("cpu")) is not None


def test_freeze_refuses_unknown_or_everything(tiny_recipe: dict[str, Any]) -> None:
    recipe = copy.deepcopy(tiny_recipe)
    recipe["freeze"] = ["encoder", "decodr"]
    with pytest.raises(UserError, match="no submodule 'decodr'"):
        Trainer(config_from_dict(recipe))
    recipe["freeze"] = ["encoder", "quantizer", "decoder"]
    with pytest.raises(UserError, match="leaves no parameter to train"):
        Trainer(config_from_dict(recipe))


def test_decoder_fine_tune_export_reads_the_originals_codes(
    tiny_recipe: dict[str, Any], tmp_path: Path
) -> None:
    import numpy as np

    import audiotok
    from audiotok.codes import read_codes, write_codes
    from audiotok.hub import read_pretrained_info

    first = _run(tiny_recipe, 3)
    src = export_checkpoint(first.last_checkpoint, tmp_path / "src")
    tuned = copy.deepcopy(tiny_recipe)
    tuned["run_dir"] = str(tmp_path / "decoder_only")
    tuned["init_from"] = str(src)
    tuned["freeze"] = ["encoder", "quantizer"]
    ckpt = _run(tuned, 2).last_checkpoint
    dst = export_checkpoint(ckpt, tmp_path / "dst")
    original, tuned_info = read_pretrained_info(src), read_pretrained_info(dst)
    assert tuned_info.codes_id == original.model_id != tuned_info.model_id
    a, b = audiotok.load(src), audiotok.load(dst)
    assert b.model_id == a.model_id and b.weights_id == tuned_info.model_id
    from audiotok.model_info import info_rows

    assert dict(info_rows(b, "dst"))["model id"].endswith(f"codes of {a.model_id})")
    wav = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    codes = a.encode(wav, sample_rate=16000)
    assert torch.equal(codes, b.encode(wav, sample_rate=16000))
    # the original's token files decode with the fine-tune, to a new sound
    path = write_codes(tmp_path / "x.npy", codes[0], a.codes_meta(codes.shape[1], 4000))
    read_codes(path, model=b)
    assert not torch.equal(a.decode(codes), b.decode(codes))
    # stored in float16, the encoder is no longer the original's: its own codes, its own id
    half = export_checkpoint(ckpt, tmp_path / "half", dtype=torch.float16)
    assert read_pretrained_info(half).codes_id == ""
    # a fine-tune that trained the encoder makes codes of its own, and says so
    free = copy.deepcopy(tuned)
    free["run_dir"], free["freeze"] = str(tmp_path / "everything"), []
    other = export_checkpoint(_run(free, 2).last_checkpoint, tmp_path / "other")
    assert read_pretrained_info(other).codes_id == ""
    with pytest.raises(UserError, match="tokens were made by model"):
        read_codes(path, model=audiotok.load(other))
