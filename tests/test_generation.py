"""Prompted generation decodes to audio that starts with the prompt's own codes; prior scores
against baselines are consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_tokenizer import tiny_tokenizer

from audiotok.errors import UserError
from audiotok.generation import generate_audio, score_prior
from audiotok.prior import GPT, GPTConfig
from audiotok.tokenizer import AudioTokenizer


def _tok(seed: int = 0) -> AudioTokenizer:
    return tiny_tokenizer(seed)


def _prior(k: int = 2, v: int = 16) -> GPT:
    torch.manual_seed(1)
    cfg = GPTConfig.from_dict(
        {
            "num_codebooks": k,
            "codebook_size": v,
            "pattern": "delay",
            "block_size": 256,
            "num_layers": 1,
            "num_heads": 2,
            "dim": 16,
        }
    )
    return GPT(cfg).eval()


def test_continuation_keeps_the_prompt_and_is_seeded() -> None:
    tok, prior = _tok(), _prior()
    wav = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    out = generate_audio(tok, prior, prompt=wav, prompt_seconds=0.05, seconds=0.1, num_samples=3)
    frames = round(0.1 * tok.frame_rate)
    assert out.codes.shape == (3, 2, frames)
    assert out.audio.shape == (3, 1, frames * tok.hop_length)
    prompt = tok.encode(wav[: round(0.05 * 8000)], num_codebooks=2)
    assert out.prompt_frames == prompt.shape[-1]
    for i in range(3):  # every sample starts with the prompt's codes
        assert torch.equal(out.codes[i, :, : out.prompt_frames], prompt[0])
    again = generate_audio(tok, prior, prompt=wav, prompt_seconds=0.05, seconds=0.1, num_samples=3)
    assert torch.equal(out.codes, again.codes)
    other = generate_audio(
        tok, prior, prompt=wav, prompt_seconds=0.05, seconds=0.1, num_samples=3, seed=5
    )
    assert not torch.equal(out.codes, other.codes)


def test_unconditional_and_mismatch() -> None:
    tok = _tok()
    out = generate_audio(tok, _prior(), seconds=0.05, num_samples=2)
    assert out.prompt_frames == 0 and out.codes.shape[0] == 2
    with pytest.raises(UserError, match="prior models"):
        generate_audio(tok, _prior(v=32), seconds=0.05)
    import dataclasses

    bound = _prior()
    bound.config = dataclasses.replace(bound.config, tokenizer_id="someone-else")
    with pytest.raises(UserError, match="trained on codes of model someone-else"):
        generate_audio(tok, bound, seconds=0.05)
    bound.config = dataclasses.replace(bound.config, tokenizer_id=tok.model_id)
    assert generate_audio(tok, bound, seconds=0.05).codes.shape[0] == 1
    with pytest.raises(UserError, match="nothing to generate"):
        generate_audio(tok, _prior(), prompt=np.zeros(800, np.float32), seconds=0.01)


def test_scores_against_baselines() -> None:
    prior = _prior()
    rng = np.random.default_rng(0)
    codes = [torch.from_numpy(rng.integers(0, 16, (3, n))) for n in (40, 70)]
    rep = score_prior(prior, codes, frame_rate=1000.0)
    assert rep["frames"] == 110 and rep["files"] == 2
    assert rep["raw_kbps"] == pytest.approx(2 * 4.0)
    for name in ("prior", "unigram", "bigram"):
        r = rep[name]
        assert len(r["bits_per_codebook"]) == 2
        assert r["bits_per_frame"] == pytest.approx(sum(r["bits_per_codebook"]))
        assert r["kbps"] == pytest.approx(r["bits_per_frame"])  # 1000 frames/s
    # the per-file prior scores, frame-weighted, equal scoring each file alone
    alone = [prior.score(c[:2][None], frame_rate=1000.0)["bits_per_frame"] for c in codes]
    assert rep["prior"]["bits_per_frame"] == pytest.approx((alone[0] * 40 + alone[1] * 70) / 110)
    assert rep["reduction"] == pytest.approx(1 - rep["prior"]["kbps"] / rep["raw_kbps"])
