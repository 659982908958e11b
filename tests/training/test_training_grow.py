"""``recipes/tools/grow_checkpoint.py``: a run continues with an added identity-initialised
module, on the same step, batches and optimizer moments."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from audiotok.registry import build_model
from audiotok.training import checkpoint as ckpt
from audiotok.training.config import config_from_dict
from audiotok.training.trainer import train

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "tools" / "grow_checkpoint.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("grow_checkpoint", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _model(state: dict[str, Any]) -> torch.nn.Module:
    model = build_model(state["config"]["model"]["family"], state["config"]["model"]["config"])
    model.load_state_dict(state["model"])
    return model.eval()


def test_grown_run_starts_where_the_old_one_stopped_and_trains_on(
    tiny_recipe: dict[str, Any], tmp_path: Path
) -> None:
    tiny_recipe["optim"]["max_steps"] = 3
    first = train(config_from_dict(tiny_recipe))
    recipe_file = tmp_path / "recipe.yaml"
    grown_recipe = copy.deepcopy(tiny_recipe)
    grown_recipe["optim"]["max_steps"] = 5
    recipe_file.write_text(yaml.safe_dump(grown_recipe))
    new_run = tmp_path / "grown"
    flag = "model.config.istft_head_hidden=8"
    assert _tool().main([str(first.checkpoint), str(recipe_file), str(new_run), "--set", flag]) == 0

    old = ckpt.load_checkpoint(first.checkpoint)
    grown = ckpt.load_checkpoint(new_run / "checkpoints" / first.checkpoint.name)
    assert grown["step"] == old["step"] == 3
    assert grown["config"]["model"]["config"]["istft_head_hidden"] == 8
    # the grown model computes what the old one did
    wav = torch.randn(1, 1, 1600)
    with torch.no_grad():
        torch.testing.assert_close(_model(grown)(wav, 2).audio, _model(old)(wav, 2).audio)
    # every old parameter keeps its Adam moments; the added ones start without
    names = [n for n, p in _model(old).named_parameters() if p.requires_grad]
    new_names = [n for n, p in _model(grown).named_parameters() if p.requires_grad]
    assert set(names) < set(new_names)
    for i, name in enumerate(names):
        j = new_names.index(name)
        a, b = old["optimizer"]["state"][i], grown["optimizer"]["state"][j]
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]), name
    added = {new_names.index(n) for n in new_names if n not in names}
    assert added and not added & set(grown["optimizer"]["state"])
    for key in ("discriminator", "disc_optimizer", "rng", "epoch", "batch_in_epoch"):
        assert repr(grown[key]) == repr(old[key]), key

    # the trainer resumes it (strict state loading) and the added MLP learns
    grown_recipe["run_dir"] = str(new_run)
    grown_recipe["model"]["config"]["istft_head_hidden"] = 8
    done = train(config_from_dict(grown_recipe), resume=True)
    assert done.step == 5
    head = ckpt.load_checkpoint(done.checkpoint)["model"]["decoder.head.mlp.2.weight"]
    assert head.abs().sum() > 0


def test_growing_refuses_to_reshape_or_drop(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    tiny_recipe["optim"]["max_steps"] = 1
    tiny_recipe["checkpoint"]["every"] = 1
    first = train(config_from_dict(tiny_recipe))
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe))
    tool = _tool()
    with pytest.raises(SystemExit, match="never reshapes"):
        tool.main(
            [
                str(first.checkpoint),
                str(recipe_file),
                str(tmp_path / "a"),
                "--set",
                "model.config.istft_hidden=32",
            ]
        )
    with pytest.raises(SystemExit, match="exists"):
        out = tmp_path / "b" / "checkpoints" / first.checkpoint.name
        out.parent.mkdir(parents=True)
        out.write_bytes(b"")
        tool.main([str(first.checkpoint), str(recipe_file), str(tmp_path / "b")])
