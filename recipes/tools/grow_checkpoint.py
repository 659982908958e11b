"""Grow a training checkpoint into a recipe whose model has *more* parameters, and resume.

A trained run can take an added module without starting over when the module starts as
the identity (e.g. ``istft_head_hidden``: an MLP beside the ISTFT head whose output layer
is zero, so the grown model computes exactly what the old one did). This writes a
checkpoint for the new recipe in which:

* every parameter and buffer of the old model is copied by name (same shape required:
  growing never reshapes what was learned);
* the added parameters keep their fresh initialisation (they are listed);
* the optimizer's moments follow their parameters by name, and added parameters start
  without moments (Adam initialises them on their first step);
* the discriminator, its optimizer, the schedulers, the data position and the RNG states
  are copied unchanged, so the run continues from the same step on the same batches.

Usage::

    python recipes/tools/grow_checkpoint.py OLD_RUN/checkpoints/step_00008500.pt \\
        RECIPE.yaml NEW_RUN [--set model.config.istft_head_hidden=1024]
    audiotok train RECIPE.yaml --run-dir NEW_RUN --resume [--set ...the same...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from audiotok.registry import build_model
from audiotok.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from audiotok.training.config import load_config


def _trainable_names(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def grow(old: dict, new_config: dict) -> tuple[dict, list[str]]:
    """The checkpoint ``old`` grown into a model built from ``new_config`` (a full recipe
    dict); returns it and the names of the parameters that were added."""
    family = new_config["model"]["family"]
    if old["config"]["model"]["family"] != family:
        raise SystemExit(f"cannot grow a {old['config']['model']['family']} into a {family}")
    old_model = build_model(family, old["config"]["model"]["config"])
    old_model.load_state_dict(old["model"])
    new_model = build_model(family, new_config["model"]["config"])
    new_state = new_model.state_dict()
    for name, tensor in old["model"].items():
        if name not in new_state:
            raise SystemExit(f"the new model has no {name}: growing cannot drop parameters")
        if new_state[name].shape != tensor.shape:
            raise SystemExit(
                f"{name} is {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(new_state[name].shape)} in the new model: growing never reshapes"
            )
        new_state[name] = tensor
    added = [n for n in new_state if n not in old["model"]]
    new_model.load_state_dict(new_state)

    old_names, new_names = _trainable_names(old_model), _trainable_names(new_model)
    index = {n: i for i, n in enumerate(new_names)}
    opt = old["optimizer"]
    if len(opt["param_groups"]) != 1 or len(opt["param_groups"][0]["params"]) != len(old_names):
        raise SystemExit("expected one optimizer group over the model's trainable parameters")
    state = {index[old_names[i]]: s for i, s in opt["state"].items()}
    group = dict(opt["param_groups"][0], params=list(range(len(new_names))))
    grown = dict(old)
    grown["model"] = new_model.state_dict()
    grown["optimizer"] = {"state": state, "param_groups": [group]}
    grown["config"] = new_config
    return grown, added


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    cfg = load_config(args.recipe, args.overrides)
    old = load_checkpoint(args.checkpoint)
    out = checkpoint_path(args.run_dir, int(old["step"]))  # where --resume looks
    if out.exists():
        raise SystemExit(f"{out} exists")
    new_config = cfg.to_dict()
    # keep what the trainer saved about the run itself (device, run_dir, precision)
    for key in ("run_dir", "device", "precision"):
        if key in old["config"]:
            new_config[key] = old["config"][key]
    grown, added = grow(old, new_config)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(grown, out)
    print(f"wrote {out} (step {grown['step']}); added {len(added)} tensors: {', '.join(added)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
