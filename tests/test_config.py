"""The one strict config helper: unknown keys and mistyped values are named, JSON lists come
back as tuples, the training recipes and the model configs share the value checker."""

from __future__ import annotations

import pytest

from audiotok.audio import SoundStreamConfig
from audiotok.config import ConfigError, coerce
from audiotok.errors import UserError
from audiotok.training.config import config_from_dict


def test_model_configs_check_types_and_name_the_key() -> None:
    cfg = SoundStreamConfig.from_dict({"ratios": [2, 4], "latent_dim": 16})
    assert cfg.ratios == (2, 4) and SoundStreamConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"'SoundStreamConfig.latent_dim' must be an integer"):
        SoundStreamConfig.from_dict({"latent_dim": 16.5})
    with pytest.raises(ConfigError, match="latent_dim"):
        SoundStreamConfig.from_dict({"latent_dim": True})  # a bool is not a number
    with pytest.raises(ConfigError, match="ratios"):
        SoundStreamConfig.from_dict({"ratios": [2, "4"]})
    with pytest.raises(ValueError, match="unknown SoundStreamConfig key"):
        SoundStreamConfig.from_dict({"latent_dims": 16})


def test_coerce_rules() -> None:
    assert coerce(3, float, "x") == 3.0 and isinstance(coerce(3, float, "x"), float)
    assert coerce("3e-4", float, "x") == 3e-4  # YAML 1.1 reads this as a string
    assert coerce([1, 2, 3], tuple[int, ...], "x") == (1, 2, 3)
    assert coerce(None, int | None, "x") is None
    with pytest.raises(ConfigError, match=r"'x' in r.yaml must be a list of 2 numbers"):
        coerce([1, 2, 3], tuple[float, float], "x", "r.yaml")


def test_recipes_use_the_same_checker() -> None:
    with pytest.raises(UserError, match=r"'optim.lr' in test must be a number, got 'fast'"):
        config_from_dict({"optim": {"lr": "fast"}}, "test")
