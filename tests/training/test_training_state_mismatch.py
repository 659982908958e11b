"""Loading saved weights into a different model names the first mismatching keys in full."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from audiotok.errors import UserError
from audiotok.training.checkpoint import load_state_strict, state_dict_mismatch
from audiotok.training.config import config_from_dict
from audiotok.training.trainer import train


def _net(width: int, extra: bool = False) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(4, width), nn.Linear(width, 2)]
    if extra:
        layers.append(nn.BatchNorm1d(2))
    return nn.Sequential(*layers)


def test_mismatch_names_missing_unexpected_and_shapes_in_full() -> None:
    model = _net(8).state_dict()
    assert state_dict_mismatch(model, _net(8).state_dict()) is None
    wider = state_dict_mismatch(model, _net(16).state_dict())
    assert wider == (
        "shape 0.weight: saved (16, 4), model (8, 4), 0.bias: saved (16,), model (8,), "
        "1.weight: saved (2, 16), model (2, 8)"
    )
    more = state_dict_mismatch(model, _net(8, extra=True).state_dict(), limit=2)
    assert more == "unexpected 2.weight, 2.bias (+3 more)"  # BatchNorm: 5 entries
    fewer = state_dict_mismatch(_net(8, extra=True).state_dict(), model)
    assert fewer is not None and fewer.startswith("missing 2.weight, 2.bias, 2.running_mean (+2")


def test_load_state_strict_raises_one_line_and_loads_when_it_fits() -> None:
    target, source = _net(8), _net(8)
    load_state_strict(target, source.state_dict(), "weights")
    assert torch.equal(target[0].weight, source[0].weight)
    with pytest.raises(UserError) as info:
        load_state_strict(target, _net(16, extra=True).state_dict(), "x.pt does not fit")
    message = str(info.value)
    assert message.startswith("x.pt does not fit: unexpected 2.weight, 2.bias, 2.running_mean")
    assert "; shape 0.weight: saved (16, 4), model (8, 4)" in message and "\n" not in message


def test_resuming_into_another_config_names_the_keys(
    tiny_recipe: dict[str, Any], tmp_path: Path
) -> None:
    tiny_recipe["optim"]["max_steps"] = 1
    tiny_recipe["checkpoint"]["every"] = 1
    first = train(config_from_dict(tiny_recipe))
    other = copy.deepcopy(tiny_recipe)
    other["model"]["config"]["latent_dim"] = 12
    with pytest.raises(UserError) as info:
        train(config_from_dict(other), resume=str(first.checkpoint))
    message = str(info.value)
    assert message.startswith("checkpoint does not match the recipe's model: shape ")
    assert "saved (8," in message and "model (12," in message and "\n" not in message
    key = message.split("shape ", 1)[1].split(":", 1)[0]
    from audiotok.training.trainer import build_model

    model = build_model("soundstream", other["model"]["config"])
    assert key in model.state_dict()  # a full key name, not torch's "Error(s) in loading"
