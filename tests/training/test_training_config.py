"""Recipe parsing: strict keys at every level, typed values, --set overrides, round trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from audiotok.errors import UserError
from audiotok.training.config import TrainConfig, apply_overrides, config_from_dict, load_config

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def _write(tmp_path: Path, recipe: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize(
    ("recipe", "key"),
    [
        ({"optim": {"lrr": 1e-3}}, "optim.lrr"),
        ({"seeed": 1}, "seeed"),
        ({"data": {"batchsize": 2}}, "data.batchsize"),
        ({"model": {"config": {"latentdim": 8}}}, "model.config.latentdim"),
        ({"discriminator": {"msstft": {"nffts": [64]}}}, "discriminator.msstft.nffts"),
        ({"loss": {"mel_options": {"n_fft": [64]}}}, "loss.mel_options.n_fft"),
    ],
)
def test_unknown_key_is_named_with_the_file(tmp_path: Path, recipe: dict, key: str) -> None:
    with pytest.raises(UserError) as info:
        load_config(_write(tmp_path, recipe))
    message = str(info.value)
    assert f"unknown key '{key}' in recipe.yaml" in message
    assert "\n" not in message


def test_mistakes_in_the_file_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    text = "seed: 1\n\n# a comment\noptim:\n  lr: 1.0e-3\n  lrr: 2\n"
    path.write_text(text)
    with pytest.raises(UserError, match=r"^unknown key 'optim\.lrr' in recipe\.yaml line 6 \("):
        load_config(path)
    path.write_text("data:\n  train: x\n  batch_size: -1\n")
    with pytest.raises(UserError, match=r"^'data\.batch_size' in recipe\.yaml line 3 must be > 0"):
        load_config(path)
    path.write_text("model:\n  family: soundstream\n  config:\n    ratios: [2]\n    latentdim: 8\n")
    with pytest.raises(UserError, match=r"'model\.config\.latentdim' in recipe\.yaml line 5 "):
        load_config(path)


def test_unknown_key_in_set_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, {})
    with pytest.raises(UserError, match=r"unknown key 'optim\.lrr' in --set optim\.lrr=3"):
        load_config(path, ["optim.lrr=3"])
    with pytest.raises(UserError, match="unknown key 'model.config.latentdim'"):
        load_config(path, ["model.config.latentdim=3"])
    with pytest.raises(UserError, match="key.path=value"):
        load_config(path, ["optim.lr"])


def test_bad_values_are_rejected(tmp_path: Path) -> None:
    for recipe, pattern in [
        ({"optim": {"lr": "fast"}}, "'optim.lr' in recipe.yaml line 2 must be a number"),
        ({"data": {"batch_size": 2.5}}, "'data.batch_size' .* must be an integer"),
        ({"optim": {"schedule": "linear"}}, "must be one of cosine, constant"),
        ({"optim": {"max_steps": 0}}, "must be > 0"),
        ({"optim": {"betas": [0.9]}}, "list of 2 numbers"),
        ({"model": {"family": "wavenet"}}, "unknown model family 'wavenet'"),
    ]:
        with pytest.raises(UserError, match=pattern):
            load_config(_write(tmp_path, recipe))


def test_overrides_are_yaml_values(tmp_path: Path) -> None:
    path = _write(tmp_path, {"optim": {"lr": 1.0e-3}})
    cfg = load_config(
        path,
        [
            "optim.lr=3e-4",  # YAML 1.1 reads this as a string; numbers are still accepted
            "optim.betas=[0.8, 0.95]",
            "data.dev=null",
            "model.config.ratios=[2, 2]",
            "discriminator.mpd={periods: [2, 3]}",
            "run_dir=somewhere",
        ],
    )
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.optim.betas == (0.8, 0.95)
    assert cfg.data.dev is None
    assert cfg.model.config["ratios"] == [2, 2]
    assert cfg.discriminator.mpd == {"periods": [2, 3]}
    assert cfg.run_dir == "somewhere"


def test_apply_overrides_does_not_touch_its_input() -> None:
    raw = {"optim": {"lr": 1.0}}
    out = apply_overrides(raw, ["optim.lr=2.0", "model.config.quantizer.type=fsq"])
    assert raw == {"optim": {"lr": 1.0}}
    assert out["model"]["config"]["quantizer"] == {"type": "fsq"}


def test_run_dir_defaults_to_recipe_name(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, {})).run_dir == str(Path("runs") / "recipe")


def test_dict_round_trip_and_frozen() -> None:
    cfg = config_from_dict({"optim": {"lr": 0.5, "betas": [0.1, 0.2]}, "seed": 7})
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()
    with pytest.raises(AttributeError):
        cfg.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_and_documents_its_command(recipe: Path) -> None:
    cfg = load_config(recipe)
    assert cfg.run_dir
    head = recipe.read_text().splitlines()[:12]
    assert any("audiotok train recipes/" + recipe.name in line for line in head)


def test_environment_variables_expand_in_recipe_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = {
        "data": {"train": "${MY_CORPUS}/train.jsonl", "dev": "${MY_DEV:-/fallback}/dev.jsonl"},
        "run_dir": "${MY_RUNS:-runs}/x",
    }
    path = _write(tmp_path, recipe)
    monkeypatch.setenv("MY_CORPUS", "/data/c")
    monkeypatch.delenv("MY_DEV", raising=False)
    monkeypatch.setenv("MY_RUNS", "/scratch")
    cfg = load_config(path, ["data.dev=${MY_CORPUS}/other.jsonl"])
    assert cfg.data.train == "/data/c/train.jsonl"
    assert cfg.data.dev == "/data/c/other.jsonl"  # --set values expand too
    assert cfg.run_dir == "/scratch/x"
    assert load_config(path).data.dev == "/fallback/dev.jsonl"  # unset: the default
    monkeypatch.delenv("MY_CORPUS")
    with pytest.raises(UserError, match="MY_CORPUS is not set"):
        load_config(path)


def test_recipes_follow_the_corpus_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOTOK_CORPUS", "/elsewhere")
    for recipe in RECIPES:
        cfg = load_config(recipe)
        if cfg.model.family.startswith(("prior", "image")):  # token folders, image sources
            continue
        if cfg.data.train != "synthetic":
            assert cfg.data.train == "/elsewhere/train.jsonl", recipe.name
            assert cfg.data.dev == "/elsewhere/dev.jsonl", recipe.name


#: An absolute path of some machine: a root folder at the start of a value or after a
#: separator (``recipes/data/`` is relative and does not match), or a fixed ``${X:-/...}``.
MACHINE_PATH = re.compile(r"(^|[\s:=\"'(,\[])/(work|tmp|home|root|mnt|scratch|data)/|:-/", re.M)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_name_no_machine_path(recipe: Path) -> None:
    found = MACHINE_PATH.search(recipe.read_text())
    assert found is None, f"{recipe.name} names a machine path: {found.group(0)!r}"


def test_corpus_variable_defaults_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = {"data": {"train": "${AUDIOTOK_CORPUS}/train.jsonl", "dev": "${AUDIOTOK_CORPUS:-/x}"}}
    path = _write(tmp_path, recipe)
    monkeypatch.delenv("AUDIOTOK_CORPUS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = load_config(path)
    assert cfg.data.train == str(tmp_path / "xdg" / "audiotok" / "corpus" / "train.jsonl")
    assert cfg.data.dev == "/x"  # a default written in the recipe wins over the built-in one
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "audiotok" / "corpus" / "train.jsonl"
    assert load_config(path).data.train == str(expected)
    monkeypatch.setenv("AUDIOTOK_CORPUS", "/mine")
    assert load_config(path).data.train == "/mine/train.jsonl"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("optim:\n  lr: 1.0\n  betas: [0.5, 0.9\nseed: 1\n", 4),  # unclosed list
        ("optim:\n  lr: 1.0\n bad: 2\n", 3),  # bad indentation
        ('seed: 1\nrun_dir: "runs/x\n', 3),  # unclosed quote: the end of the file
        ("seed: 1\n\tdevice: cpu\n", 2),  # a tab
    ],
)
def test_yaml_syntax_errors_name_the_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not valid YAML: line {line}, column ")
    assert "\n" not in message
