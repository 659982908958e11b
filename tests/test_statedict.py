"""audiotok.statedict: one-line mismatch messages, tied weights, and its place at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from audiotok.errors import UserError
from audiotok.statedict import load_state_strict, state_dict_mismatch
from audiotok.training import checkpoint

PKG = Path(__file__).resolve().parents[1] / "audiotok"


class Tied(nn.Module):
    """An embedding whose output layer shares its weight (safetensors stores it once)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight


def test_mismatch_names_every_kind_in_full_on_one_line() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4)).state_dict()
    saved = dict(model)
    del saved["1.bias"]
    saved["1.weight"] = torch.zeros(4, 2)
    saved["2.running_mean"] = torch.zeros(4)
    problem = state_dict_mismatch(model, saved)
    assert problem == (
        "missing 1.bias; unexpected 2.running_mean; shape 1.weight: saved (4, 2), model (4, 3)"
    )
    assert state_dict_mismatch(model, dict(model)) is None
    assert state_dict_mismatch(model, {}, limit=1) == "missing 0.weight (+3 more)"
    assert state_dict_mismatch(model, {"0.weight": model["0.weight"]}, optional=model) is None


def test_tied_weights_stored_once_load_when_optional() -> None:
    source, target = Tied(), Tied()
    state = {"embed.weight": source.embed.weight.detach().clone()}
    with pytest.raises(UserError, match=r"^m: missing head\.weight$"):
        load_state_strict(target, state, "m")
    load_state_strict(target, state, "m", optional={"head.weight"})
    assert torch.equal(target.head.weight, source.embed.weight)


def test_load_reports_what_torch_refuses_in_one_line() -> None:
    target = nn.Linear(2, 2)
    bad = {"weight": np.zeros((2, 2), np.float32), "bias": torch.zeros(2)}  # not a tensor
    with pytest.raises(UserError, match=r"^x: ") as info:
        load_state_strict(target, bad, "x")
    assert "\n" not in str(info.value)


def test_training_keeps_its_names_for_the_moved_helpers() -> None:
    assert checkpoint.load_state_strict is load_state_strict
    assert checkpoint.state_dict_mismatch is state_dict_mismatch


@pytest.mark.parametrize("name", ["statedict.py", "migrations.py"])
def test_leaf_modules_import_only_errors_and_no_torch(name: str) -> None:
    # hub, training and anything else may use them, so they must sit below everything
    tree = ast.parse((PKG / name).read_text())
    for node in tree.body:  # module level; TYPE_CHECKING blocks are not run
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for mod in names:
            assert not mod.startswith("torch"), f"{name} imports {mod}"
            if mod.startswith("audiotok"):
                assert mod == "audiotok.errors", f"{name} imports {mod}"
