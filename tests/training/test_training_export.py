"""Export a checkpoint to a model folder, and the train/export commands of the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from audiotok.cli import app
from audiotok.errors import UserError
from audiotok.hub import load_pretrained
from audiotok.training.checkpoint import load_checkpoint
from audiotok.training.export import export_checkpoint
from audiotok.training.trainer import build_model

runner = CliRunner()


@pytest.fixture
def trained(tiny_recipe: dict[str, Any], tmp_path: Path) -> Path:
    """A 2-step run made through ``audiotok train`` (returns its checkpoint)."""
    tiny_recipe["optim"]["max_steps"] = 100
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    result = runner.invoke(app, ["train", str(recipe), "--max-steps", "2", "--set", "seed=5"])
    assert result.exit_code == 0, result.output
    ckpt = Path(tiny_recipe["run_dir"]) / "checkpoints" / "step_00000002.pt"
    assert ckpt.is_file()
    assert str(ckpt) in result.output
    state = load_checkpoint(ckpt)
    assert state["config"]["optim"]["max_steps"] == 2 and state["config"]["seed"] == 5
    return ckpt


def test_export_round_trip(trained: Path, tmp_path: Path) -> None:
    out = export_checkpoint(trained, tmp_path / "model")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors"}
    loaded = load_pretrained(out)
    state = load_checkpoint(trained)
    reference = build_model(state["config"]["model"]["family"], state["config"]["model"]["config"])
    reference.load_state_dict(state["model"])
    reference.eval()
    wav = torch.randn(2, 1, 1999) * 0.3
    codes = reference.encode(wav)
    assert torch.equal(loaded.encode(wav), codes)
    assert torch.equal(loaded.decode(codes), reference.decode(codes))
    # a run folder exports its latest checkpoint; an existing folder needs force
    with pytest.raises(UserError, match="already holds an exported model"):
        export_checkpoint(trained.parent.parent, out)
    assert export_checkpoint(trained.parent.parent, out, force=True) == out


def test_cli_export_and_force(trained: Path, tmp_path: Path) -> None:
    dest = tmp_path / "exported"
    first = runner.invoke(app, ["export", str(trained), str(dest)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["export", str(trained), str(dest)])
    assert again.exit_code == 1 and "error:" in again.output and "Traceback" not in again.output
    forced = runner.invoke(app, ["export", str(trained), str(dest), "--force"])
    assert forced.exit_code == 0, forced.output


def test_cli_export_half_precision(trained: Path, tmp_path: Path) -> None:
    full, half = tmp_path / "full", tmp_path / "half"
    assert runner.invoke(app, ["export", str(trained), str(full)]).exit_code == 0
    done = runner.invoke(app, ["export", str(trained), str(half), "--dtype", "float16"])
    assert done.exit_code == 0, done.output
    a, b = load_pretrained(full), load_pretrained(half)
    for name, t in b.state_dict().items():
        if t.is_floating_point():
            assert t.dtype == torch.float32
            assert torch.equal(t, a.state_dict()[name].half().float()), name
    bad = runner.invoke(app, ["export", str(trained), str(tmp_path / "x"), "--dtype", "int8"])
    assert bad.exit_code == 1 and "--dtype must be one of" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "x").exists()


def test_cli_errors_are_one_line(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    bad_set = runner.invoke(app, ["train", str(recipe), "--set", "optim.lrr=1"])
    assert bad_set.exit_code == 1
    assert bad_set.output.strip() == "error: unknown key 'optim.lrr' in --set optim.lrr=1"
    tiny_recipe["optim"]["lrr"] = 1
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    bad_file = runner.invoke(app, ["train", str(recipe)])
    assert bad_file.exit_code == 1
    assert bad_file.output.startswith("error: unknown key 'optim.lrr' in recipe.yaml")
    missing = runner.invoke(app, ["export", str(tmp_path / "nope.pt"), str(tmp_path / "x")])
    assert missing.exit_code == 1 and "checkpoint not found" in missing.output


def test_cli_export_discriminator(trained: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    dest = tmp_path / "with_disc"
    result = runner.invoke(app, ["export", str(trained), str(dest), "--discriminator"])
    assert result.exit_code == 0, result.output
    saved = load_file(str(dest / "discriminator.safetensors"))
    state = load_checkpoint(trained)["discriminator"]
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)
    # the model folder still loads as a model; the extra file is not part of it
    assert load_pretrained(dest) is not None
    again = runner.invoke(app, ["export", str(trained), str(dest), "--discriminator"])
    assert again.exit_code == 1 and "Traceback" not in again.output
