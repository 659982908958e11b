"""audiotok.load: bundled names, folders, the family's modality picks the tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_image_models import tiny_vqvae
from typer.testing import CliRunner

from audiotok import hub
from audiotok.cli import app
from audiotok.errors import UserError
from audiotok.tokenizer import AudioTokenizer, ImageTokenizer


def test_bundled_names_and_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(hub.load("fmnist"), ImageTokenizer)
    assert isinstance(hub.load("default"), AudioTokenizer)
    assert hub.bundled_name_for(hub.load("fmnist").model_id) == "fmnist"
    assert hub.bundled_name_for("nope") is None
    torch.manual_seed(0)
    folder = hub.save_pretrained(tiny_vqvae(channels=1), tmp_path / "mine")
    tok = hub.load(folder)
    assert (
        isinstance(tok, ImageTokenizer)
        and tok.model_id == hub.read_pretrained_info(folder).model_id
    )
    with pytest.raises(UserError, match=r"unknown model 'fmnst'.*default, fmnist"):
        hub.load("fmnst")
    with pytest.raises(UserError, match="not found"):
        hub.load(tmp_path / "missing")
    monkeypatch.setitem(hub.BUNDLED_MODELS, "fmnist", tmp_path / "gone")
    with pytest.raises(UserError, match="bundled fmnist model is not installed"):
        hub.load("fmnist")


def test_a_prior_is_not_a_tokenizer(tmp_path: Path) -> None:
    import json

    (tmp_path / "prior").mkdir()
    info = {"family": "prior_gpt", "model_id": "p1", "format_version": 1, "config": {}}
    (tmp_path / "prior" / "config.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="prior_gpt model .* is not a tokenizer"):
        hub.load(tmp_path / "prior")


def test_decode_refuses_huge_grids_before_decoding(tmp_path: Path) -> None:
    tok = ImageTokenizer(tiny_vqvae(channels=1))
    with pytest.raises(UserError, match="more than"):
        tok.decode_to_file(np.zeros((1, 3000, 3000), np.int64), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_eval_refuses_bitrate_for_images(tmp_path: Path) -> None:
    np.save(tmp_path / "set.npy", np.zeros((2, 8, 8), np.uint8))
    result = CliRunner().invoke(
        app,
        ["eval", str(tmp_path / "set.npy"), "-m", "fmnist", "-b", "6", "-o", str(tmp_path / "r")],
    )
    assert result.exit_code == 1 and "--bitrate is for audio" in result.stderr
