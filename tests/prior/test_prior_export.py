"""A prior's export is written like a tokenizer's (audiotok.exports): never over an existing
export without force, force replaces only the two files, files follow the umask, and the
model id recorded is the one the weights give."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from tiny_priors import K, tiny_gpt

from audiotok.errors import UserError
from audiotok.exports import model_id_for
from audiotok.prior import delay, load_prior


def test_export_refuses_to_overwrite_and_force_keeps_other_files(tmp_path: Path) -> None:
    first, second = tiny_gpt(delay(K), seed=0), tiny_gpt(delay(K), seed=1)
    out = first.save_pretrained(tmp_path / "p")
    (out / "README.md").write_text("my notes")
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds an exported model"):
        second.save_pretrained(out)
    assert (out / "model.safetensors").read_bytes() == before  # nothing lost
    from audiotok.prior.io import save_pretrained

    save_pretrained(second, out, force=True)
    assert (out / "README.md").read_text() == "my notes"
    loaded = load_prior(out)
    for a, b in zip(loaded.state_dict().values(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    meta = json.loads((out / "config.json").read_text())
    assert meta["model_id"] == model_id_for(second) != model_id_for(first)
    assert not [p for p in out.iterdir() if "audiotok-tmp" in p.name]


def test_export_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = tiny_gpt(delay(K)).save_pretrained(tmp_path / "p")
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name  # safetensors alone: 0600
