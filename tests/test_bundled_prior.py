"""The bundled prior matches the bundled tokenizer and generates from it on a fresh install."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import audiotok
from audiotok.generation import generate_audio
from audiotok.image_generation import bundled_prior_dir
from audiotok.prior import load_prior

PRETRAINED = Path(audiotok.__file__).parent / "pretrained"


def test_bundled_prior_is_bound_to_the_bundled_tokenizer() -> None:
    # fails the day the bundled tokenizer changes without its prior being retrained
    folder = bundled_prior_dir("default")
    assert folder == PRETRAINED / "default_prior"
    tok = audiotok.load("default")
    cfg = json.loads((folder / "config.json").read_text())["config"]
    assert cfg["tokenizer_id"] == tok.model_id
    assert cfg["codebook_size"] == tok.codebook_size and cfg["num_codebooks"] <= tok.num_codebooks
    assert (folder / "model.safetensors").stat().st_size <= 16 * 2**20  # the bound


def test_bundled_prior_continues_a_prompt() -> None:
    tok, prior = audiotok.load("default"), load_prior(bundled_prior_dir("default"))
    t = np.arange(tok.sample_rate) / tok.sample_rate
    prompt = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    out = generate_audio(tok, prior, prompt=prompt, prompt_seconds=0.5, seconds=1.0, seed=0)
    again = generate_audio(tok, prior, prompt=prompt, prompt_seconds=0.5, seconds=1.0, seed=0)
    assert torch.equal(out.codes, again.codes)  # seeded
    head = tok.encode(torch.as_tensor(prompt[: tok.sample_rate // 2])[None], num_codebooks=8)
    assert torch.equal(out.codes[..., : out.prompt_frames], head[..., : out.prompt_frames])
    tail = out.audio[..., out.prompt_frames * tok.sample_rate // round(tok.frame_rate) :]
    assert tail.abs().max() < 1.0 and tail.pow(2).mean().sqrt() > 1e-3  # not clipped or silent


def test_bundled_prior_refuses_another_tokenizer(tmp_path: Path) -> None:
    from audiotok.errors import UserError
    from audiotok.generation import check_pair

    prior = load_prior(bundled_prior_dir("default"))

    class Other:
        model_id, codebook_size, num_codebooks = "000000000000", 1024, 8

    with pytest.raises(UserError, match="trained on codes of model"):
        check_pair(Other(), prior)


def test_load_prior_by_bundled_name_or_folder(tmp_path: Path) -> None:
    from audiotok.errors import UserError

    prior = audiotok.load_prior("default")
    assert prior.config.tokenizer_id == audiotok.load("default").model_id
    again = audiotok.load_prior(str(bundled_prior_dir("default")))
    for a, b in zip(prior.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(UserError):
        audiotok.load_prior(tmp_path / "nothing")
