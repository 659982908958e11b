"""LM coding: the arithmetic coder, exact code restore through a GPT prior, .atlm files."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiotok.codes import CodesMeta
from audiotok.errors import UserError
from audiotok.lmcodes import decode_lm_bytes, encode_lm_bytes, read_lm_file, write_lm_file
from audiotok.prior import GPT, GPTConfig, Pattern, coarse_first, delay, flatten, parallel
from audiotok.prior.entropy import FREQ_BITS, decode_symbols, encode_symbols, quantize_pmf
from audiotok.prior.lmcoding import (
    decode_codes,
    encode_codes,
    encode_with_stats,
    prior_fingerprint,
)

K, V = 3, 11
PATTERNS: dict[str, Pattern] = {
    "parallel": parallel(K),
    "delay": delay(K),
    "flatten": flatten(K),
    "coarse_first": coarse_first(K, 1),
    "coarse_first_delay": coarse_first(K, 1, fine="delay"),
}


def _gpt(pattern: Pattern, *, block_size: int = 24, seed: int = 0, **kw) -> GPT:
    """A 2-layer GPT with K = 3 codebooks of V = 11 codes; block 24 makes T > ~20 slide."""
    torch.manual_seed(seed)
    cfg = GPTConfig(
        num_codebooks=K,
        codebook_size=V,
        pattern=pattern,
        block_size=block_size,
        num_layers=2,
        num_heads=2,
        dim=16,
        **kw,
    )
    prior = GPT(cfg).eval()
    with torch.no_grad():  # sharper than the init, so the codes are not all equally likely
        prior.head.weight.mul_(60)
    return prior


def _meta(t: int, model_id: str = "tok123456789") -> CodesMeta:
    return CodesMeta(
        model_id=model_id,
        family="soundstream",
        audiotok_version="0.1.0",
        sample_rate=24000,
        frame_rate=75.0,
        hop_length=320,
        channels=1,
        num_codebooks=K,
        codebook_size=V,
        length=t * 320 - 17,
        original_sample_rate=44100,
        original_length=round((t * 320 - 17) * 44100 / 24000),
        original_channels=2,
    )


# -- the coder ------------------------------------------------------------------------------
@st.composite
def _tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 40))
    v = draw(st.integers(1, 300))
    scale = draw(st.sampled_from([0.0, 1.0, 8.0, 60.0]))  # uniform .. nearly one-hot
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, v, generator=g) * scale).softmax(dim=-1)
    if draw(st.booleans()) and v > 1:
        probs[:, 0] = 0.0  # impossible symbols must still be codable
        probs[:, -1] += 0.01
    symbols = torch.randint(0, v, (n,), generator=g).numpy()  # any symbol, even unlikely
    return quantize_pmf(probs), symbols


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_coder_round_trip_on_random_tables(case: tuple[np.ndarray, np.ndarray]) -> None:
    cdfs, symbols = case
    data = encode_symbols(cdfs, symbols)
    assert np.array_equal(decode_symbols(data, cdfs), symbols)
    rows = np.arange(len(symbols))
    freqs = cdfs[rows, symbols + 1] - cdfs[rows, symbols]
    ideal = float(np.sum(FREQ_BITS - np.log2(freqs)))
    assert len(data) * 8 <= ideal + 2 + 8  # two flush bits, padding to a byte


def test_quantize_pmf_is_a_valid_table() -> None:
    probs = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [1e-30, 0.5, 0.5, 0]])
    cdf = quantize_pmf(probs)
    freq = np.diff(cdf, axis=-1)
    assert cdf.dtype == np.int64 and (cdf[:, 0] == 0).all()
    assert (cdf[:, -1] == 1 << FREQ_BITS).all() and (freq >= 1).all()
    assert freq[1].max() - freq[1].min() <= 4  # uniform stays (nearly) uniform
    assert np.array_equal(quantize_pmf(probs.float()), quantize_pmf(probs.float()))
    with pytest.raises(ValueError, match="finite"):
        quantize_pmf(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="symbols"):
        quantize_pmf(torch.ones(1, 1 << 24))


# -- through the prior ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PATTERNS))
@pytest.mark.parametrize("frames", [1, 2, 9, 31])
def test_codes_restore_exactly_for_every_pattern(name: str, frames: int) -> None:
    # 31 frames pass the 24-position context for every pattern: the window slides
    prior = _gpt(PATTERNS[name])
    codes = torch.randint(0, V, (K, frames))
    data = encode_codes(prior, codes)
    assert torch.equal(decode_codes(prior, data, K, frames), codes)


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(list(PATTERNS)),
    frames=st.integers(0, 40),
    seed=st.integers(0, 1000),
)
def test_codes_restore_for_random_lengths(name: str, frames: int, seed: int) -> None:
    prior = _gpt(PATTERNS[name], block_size=16)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, V, (K, frames), generator=g)
    data = encode_codes(prior, codes.numpy())
    assert torch.equal(decode_codes(prior, data, K, frames), codes)


@pytest.mark.parametrize("name", ["delay", "flatten"])
def test_a_shorter_context_restores_and_travels_in_the_file(name: str, tmp_path: Path) -> None:
    prior = _gpt(PATTERNS[name], block_size=32)
    codes = np.random.default_rng(3).integers(0, V, (K, 25))
    data = encode_codes(prior, codes, context=9)
    assert torch.equal(decode_codes(prior, data, K, 25, context=9), torch.from_numpy(codes))
    assert data != encode_codes(prior, codes)
    write_lm_file(tmp_path / "x.atlm", codes, prior, context=9)
    assert np.array_equal(read_lm_file(tmp_path / "x.atlm", prior)[0], codes)
    for bad in (1, 33):
        with pytest.raises(ValueError, match="context must be in 2..32"):
            encode_codes(prior, codes, context=bad)


def test_class_conditional_codes_restore_and_the_label_matters() -> None:
    prior = _gpt(delay(K), num_classes=3)
    codes = torch.randint(0, V, (K, 12))
    data = encode_codes(prior, codes, class_label=2)
    assert torch.equal(decode_codes(prior, data, K, 12, class_label=2), codes)
    assert data != encode_codes(prior, codes)


@pytest.mark.parametrize("name", ["delay", "flatten"])
def test_size_is_the_cross_entropy(name: str) -> None:
    prior = _gpt(PATTERNS[name], block_size=128)
    codes = prior.generate(40, generator=torch.Generator().manual_seed(0))[0]  # the prior's own
    data, stats = encode_with_stats(prior, codes)
    # the coder's probabilities are the teacher-forced forward's (the context fits here)
    bits = prior.score(codes[None])["bits_per_frame"] * codes.shape[1]
    assert stats.model_bits == pytest.approx(bits, rel=1e-4)
    assert stats.table_bits == pytest.approx(stats.model_bits, rel=1e-3)
    assert stats.num_bytes == len(data) and stats.num_symbols == codes.numel()
    assert 8 * len(data) <= stats.model_bits * 1.01 + 16
    assert 8 * len(data) >= stats.table_bits - 1


def test_thread_count_and_mode_are_restored() -> None:
    prior = _gpt(delay(K)).train()
    torch.set_num_threads(2)
    try:
        encode_codes(prior, torch.randint(0, V, (K, 5)))
        assert torch.get_num_threads() == 2 and prior.training
    finally:
        torch.set_num_threads(1)


def test_bad_inputs_are_refused() -> None:
    prior = _gpt(delay(K))
    with pytest.raises(ValueError, match="integer"):
        encode_codes(prior, torch.zeros(K + 1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="0..10"):
        encode_codes(prior, torch.full((K, 4), V))
    with pytest.raises(ValueError, match="float32"):
        encode_codes(_gpt(delay(K)).double(), torch.zeros(K, 4, dtype=torch.long))
    assert encode_codes(prior, torch.zeros(K, 0, dtype=torch.long)) == b""
    assert decode_codes(prior, b"", K, 0).shape == (K, 0)


def test_fingerprint_ignores_labels_but_not_weights() -> None:
    a = _gpt(delay(K))
    b = GPT(dataclasses.replace(a.config, tokenizer_id="abc")).eval()
    b.load_state_dict(a.state_dict())
    assert prior_fingerprint(a) == prior_fingerprint(b)
    assert prior_fingerprint(a) != prior_fingerprint(_gpt(delay(K), seed=1))
    assert prior_fingerprint(a) != prior_fingerprint(_gpt(parallel(K)))


# -- .atlm files --------------------------------------------------------------------------------
def test_file_round_trip_keeps_codes_and_metadata(tmp_path: Path) -> None:
    prior = _gpt(delay(K))
    codes = np.random.default_rng(0).integers(0, V, (K, 30)).astype(np.uint8)
    path = tmp_path / "x.atlm"
    stats = write_lm_file(path, codes, prior, _meta(30))
    out, meta = read_lm_file(path, prior)
    assert np.array_equal(out, codes) and out.dtype == np.uint8
    assert meta == _meta(30)
    assert path.stat().st_size - stats.num_bytes <= 80  # a small header
    assert read_lm_file(path, prior, SimpleNamespace(model_id="tok123456789"))[1] == meta
    with pytest.raises(UserError, match="made by model tok123456789 .* model in use is xyz"):
        read_lm_file(path, prior, SimpleNamespace(model_id="xyz"))
    write_lm_file(tmp_path / "bare.atlm", codes, prior)
    assert read_lm_file(tmp_path / "bare.atlm", prior)[1] is None
    with pytest.raises(UserError, match="already exists"):
        write_lm_file(path, codes, prior)
    write_lm_file(path, codes[:, :5], prior, force=True)
    assert read_lm_file(path, prior)[0].shape == (K, 5)


@pytest.fixture
def written(tmp_path: Path) -> tuple[GPT, bytes]:
    prior = _gpt(delay(K))
    codes = np.random.default_rng(1).integers(0, V, (K, 20))
    return prior, encode_lm_bytes(codes, prior, _meta(20))[0]


@pytest.mark.parametrize("cut", [3, 10, 40, -5, -1])
def test_truncated_files_are_refused(written: tuple[GPT, bytes], cut: int) -> None:
    prior, data = written
    with pytest.raises(UserError, match="truncated|corrupt|magic"):
        decode_lm_bytes(data[:cut], prior, "x.atlm")


def test_every_flipped_byte_is_refused(written: tuple[GPT, bytes]) -> None:
    prior, data = written
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(UserError, match=r"^x\.atlm: "):
            decode_lm_bytes(bytes(bad), prior, "x.atlm")


def test_another_prior_is_refused(written: tuple[GPT, bytes], tmp_path: Path) -> None:
    _, data = written
    with pytest.raises(UserError, match="coded with prior .* but the prior in use"):
        decode_lm_bytes(data, _gpt(delay(K), seed=3), "x.atlm")


def test_a_prior_computing_differently_fails_the_code_checksum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the same fingerprint but other numbers: what another machine's float kernels look like
    monkeypatch.setattr("audiotok.prior.lmcoding.prior_fingerprint", lambda p: "0123456789ab")
    prior = _gpt(delay(K))
    data, _ = encode_lm_bytes(np.random.default_rng(1).integers(0, V, (K, 20)), prior)
    with torch.no_grad():
        prior.head.weight.add_(0.5 * torch.randn_like(prior.head.weight))
    with pytest.raises(UserError, match="checksum: this machine computes the prior differently"):
        decode_lm_bytes(data, prior, "x.atlm")


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_wrong_files_and_wrong_codes_are_refused(tmp_path: Path) -> None:
    prior = _gpt(delay(K))
    other = tmp_path / "x.npy"
    np.save(other, np.zeros((K, 4), dtype=np.uint8))
    with pytest.raises(UserError, match="not an LM-coded token file"):
        read_lm_file(other, prior)
    with pytest.raises(UserError, match="file not found"):
        read_lm_file(tmp_path / "missing.atlm", prior)
    with pytest.raises(UserError, match="for this prior"):
        write_lm_file(tmp_path / "a.atlm", np.zeros((K + 1, 4), dtype=np.int64), prior)
    with pytest.raises(UserError, match="length"):
        write_lm_file(tmp_path / "b.atlm", np.zeros((K, 4), dtype=np.int64), prior, _meta(9))
    tied = _gpt(delay(K), tokenizer_id="tokAAAAAAAAA")
    with pytest.raises(UserError, match="trained on codes of model tokAAAAAAAAA"):
        write_lm_file(tmp_path / "c.atlm", np.zeros((K, 4), dtype=np.int64), tied, _meta(4))
    assert not list(tmp_path.glob("*.atlm"))


def test_a_newer_version_is_refused(written: tuple[GPT, bytes]) -> None:
    prior, data = written
    with pytest.raises(UserError, match="version 2, this audiotok reads 1"):
        decode_lm_bytes(_with_crc(data[:4] + bytes([2]) + data[5:-4]), prior, "x.atlm")


def test_frames_are_bounded_before_decoding(written: tuple[GPT, bytes]) -> None:
    prior, data = written
    assert data[6:8] == bytes([K, 20])  # varints K, T'
    huge = bytes([0x80, 0x80, 0x80, 0x80, 0x04])  # T' = 2**30 as a varint
    with pytest.raises(UserError, match="does not fit the prior"):
        decode_lm_bytes(_with_crc(data[:7] + huge + data[8:-4]), prior, "x.atlm")
    overlong = bytes([0xFF] * 11)
    with pytest.raises(UserError, match="corrupt header"):
        decode_lm_bytes(_with_crc(data[:7] + overlong + data[8:-4]), prior, "x.atlm")


def test_another_process_with_more_threads_decodes_the_file(tmp_path: Path) -> None:
    # a fresh interpreter, two torch threads, the prior loaded from its export: what
    # `audiotok decode --lm` does later on the same machine
    prior = _gpt(delay(K), block_size=16)
    prior.save_pretrained(tmp_path / "prior")
    codes = np.random.default_rng(2).integers(0, V, (K, 30))
    write_lm_file(tmp_path / "x.atlm", codes, prior, _meta(30))
    np.save(tmp_path / "want.npy", codes)
    script = (
        "import sys, numpy as np, torch; torch.set_num_threads(2)\n"
        "from audiotok.lmcodes import read_lm_file\n"
        "from audiotok.prior.pretrained import load_prior\n"
        "d = sys.argv[1]\n"
        "codes, meta = read_lm_file(d + '/x.atlm', load_prior(d + '/prior'))\n"
        "assert np.array_equal(codes, np.load(d + '/want.npy')) and meta.length > 0\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_a_slid_window_looks_like_a_sequence_start(name: str) -> None:
    # past the context the window restarts at frame f0 without the codes of older frames:
    # the layout the prior was trained on (pattern.build of codes from f0 on)
    from audiotok.prior.lmcoding import _Stepper

    pattern = PATTERNS[name]
    prior = _gpt(pattern)
    codes = torch.randint(0, V, (1, K, 30))
    grid, present = pattern.build(codes)
    stepper = _Stepper(prior, grid, present, None, prior.config.block_size)
    f0, p = 7, pattern.steps_per_frame
    upto = f0 * p + 12
    stepper.prefill(f0 * p, upto)
    fresh = pattern.build(codes[..., f0:])[0][..., : upto - f0 * p]
    assert torch.equal(stepper._columns(f0 * p, upto), fresh)
