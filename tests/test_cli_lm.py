"""``audiotok encode --lm`` / ``decode --lm``: LM-coded token files through the real CLI.

The .atlm file must decode to exactly the audio the plain token file decodes to, be smaller
than it, and an .atlm without its prior (or with another one) must fail in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tiny_tokenizer import tiny_tokenizer
from typer.testing import CliRunner

from audiotok.cli import app
from audiotok.hub import load, save_pretrained
from audiotok.prior import GPT, GPTConfig, delay


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    model = save_pretrained(tiny_tokenizer().model, tmp_path / "model")
    tok = load(str(model))
    priors = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = GPTConfig(
            num_codebooks=3, codebook_size=16, pattern=delay(3), block_size=64,
            num_layers=1, num_heads=2, dim=16, tokenizer_id=tok.model_id,
        )  # fmt: skip
        priors.append(GPT(cfg).eval().save_pretrained(tmp_path / f"prior{seed}"))
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000  # 1 s: 1000 frames, past the 64-step context (window slides)
    wav = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(tmp_path / "a.wav", wav.astype(np.float32), 8000)
    return model, priors[0], priors[1]


def test_encode_lm_decodes_to_the_plain_tokens_audio(tmp_path: Path) -> None:
    model, prior, other = _setup(tmp_path)
    run = CliRunner().invoke
    args = ["encode", str(tmp_path / "a.wav"), "-m", str(model)]
    assert run(app, [*args, "-o", str(tmp_path / "plain")]).exit_code == 0
    res = run(app, [*args, "-o", str(tmp_path / "lm"), "--lm", str(prior)])
    assert res.exit_code == 0, res.output
    atlm, npy = tmp_path / "lm" / "a.atlm", tmp_path / "plain" / "a.npy"
    assert atlm.is_file() and atlm.stat().st_size < npy.stat().st_size
    # no overwrite without --force
    again = run(app, [*args, "-o", str(tmp_path / "lm"), "--lm", str(prior)])
    assert again.exit_code != 0 and "exists" in again.output

    dec = ["decode", "-m", str(model), "--model-rate"]
    assert run(app, [*dec, str(npy), "-o", str(tmp_path / "plain.wav")]).exit_code == 0
    res = run(app, [*dec, str(atlm), "-o", str(tmp_path / "lm.wav"), "--lm", str(prior)])
    assert res.exit_code == 0, res.output
    a, _ = sf.read(tmp_path / "plain.wav")
    b, _ = sf.read(tmp_path / "lm.wav")
    np.testing.assert_array_equal(a, b)

    # without its prior, or with another prior: one line each, non-zero exit, nothing written
    res = run(app, [*dec, str(atlm), "-o", str(tmp_path / "x.wav")])
    assert res.exit_code != 0 and "pass --lm" in res.output and "Traceback" not in res.output
    res = run(app, [*dec, str(atlm), "-o", str(tmp_path / "y.wav"), "--lm", str(other)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "y.wav").exists()


def test_encode_lm_refuses_a_prior_of_another_codebook_count(tmp_path: Path) -> None:
    model, prior, _ = _setup(tmp_path)
    res = CliRunner().invoke(
        app, ["encode", str(tmp_path / "a.wav"), "-m", str(model), "-k", "2", "--lm", str(prior)]
    )
    assert res.exit_code != 0 and "codebooks" in res.output
    assert not (tmp_path / "a.atlm").exists()
