"""Patterns: exact round trips over random shapes, masks, layouts and the LM export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiotok.prior import (
    EMPTY_CODE,
    LMVocab,
    Pattern,
    coarse_first,
    delay,
    flatten,
    from_lm_tokens,
    parallel,
    to_lm_tokens,
)


@st.composite
def patterns(draw: st.DrawFn) -> Pattern:
    k = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["parallel", "delay", "flatten", "coarse_first", "custom"]))
    if kind == "parallel":
        return parallel(k)
    if kind == "delay":
        return delay(k, draw(st.lists(st.integers(0, 4), min_size=k, max_size=k)))
    if kind == "flatten":
        return flatten(k)
    if kind == "coarse_first" and k > 1:
        return coarse_first(
            k, draw(st.integers(1, k - 1)), draw(st.sampled_from(["parallel", "delay"]))
        )
    substeps = draw(st.lists(st.integers(0, k - 1), min_size=k, max_size=k))
    remap = {s: i for i, s in enumerate(sorted(set(substeps)))}  # make them cover 0..P-1
    delays = draw(st.lists(st.integers(0, 3), min_size=k, max_size=k))
    return Pattern("custom", tuple(delays), tuple(remap[s] for s in substeps))


@st.composite
def codes_and_pattern(draw: st.DrawFn) -> tuple[Tensor, Pattern]:  # noqa: F821
    p = draw(patterns())
    b, t = draw(st.integers(1, 3)), draw(st.integers(0, 7))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 50, (b, p.num_codebooks, t), generator=g), p


@settings(max_examples=150, deadline=None)
@given(codes_and_pattern())
def test_build_revert_round_trip_and_mask(case) -> None:
    codes, p = case
    b, k, t = codes.shape
    seq, mask = p.build(codes)
    assert seq.shape == (b, k, p.num_steps(t)) and mask.shape == (k, p.num_steps(t))
    assert torch.equal(p.revert(seq), codes)
    assert int(mask.sum()) == k * t  # every code once, nothing else
    assert bool((seq[:, ~mask] == EMPTY_CODE).all())  # empty slots hold the documented id
    assert bool((seq[:, mask] >= 0).all())
    assert p.num_frames(p.num_steps(t)) == t
    if t:
        assert bool(mask[:, -1].any()), "the grid ends at its last code"
        done = p.completion_steps(t)
        assert bool((p.positions(t) <= done).all()) and bool((p.positions(t).amax(0) == done).all())


@settings(max_examples=150, deadline=None)
@given(codes_and_pattern(), st.integers(0, 100), st.booleans(), st.booleans())
def test_lm_tokens_round_trip(case, offset: int, bos: bool, eos: bool) -> None:
    codes, p = case
    vocab = LMVocab(p.num_codebooks, 50, offset=offset)
    tokens = to_lm_tokens(codes, p, vocab, bos=bos, eos=eos)
    assert torch.equal(from_lm_tokens(tokens, p, vocab), codes)
    body = tokens[:, int(bos) : tokens.shape[1] - int(eos)]
    specials = {vocab.bos, vocab.eos, vocab.mask}
    assert not any(int(x) in specials for x in body.flatten())
    assert bool(((body >= offset) & (body < vocab.size)).all())


def test_delay_layout_is_musicgen() -> None:
    codes = torch.tensor([[[1, 2, 3], [4, 5, 6], [7, 8, 9]]])
    seq, mask = delay(3).build(codes)
    e = EMPTY_CODE
    assert seq[0].tolist() == [[1, 2, 3, e, e], [e, 4, 5, 6, e], [e, e, 7, 8, 9]]
    assert mask.tolist() == (seq[0] >= 0).tolist()


def test_flatten_is_frame_major_and_coarse_first_is_partial() -> None:
    codes = torch.tensor([[[1, 2], [3, 4], [5, 6]]])
    seq, mask = flatten(3).build(codes)
    assert seq[0].T[mask.T].tolist() == [1, 3, 5, 2, 4, 6]
    seq, _ = coarse_first(3, 1).build(codes)
    e = EMPTY_CODE
    assert seq[0].tolist() == [[1, e, 2, e], [e, 3, e, 4], [e, 5, e, 6]]


def test_lm_layout_of_a_delay_pattern() -> None:
    vocab = LMVocab(2, 10, offset=100)
    tokens = to_lm_tokens(torch.tensor([[[1, 2], [3, 4]]]), delay(2), vocab)
    b, eos, em = vocab.bos, vocab.eos, vocab.empty
    assert tokens[0].tolist() == [b, 101, em, 102, 113, em, 114, eos]
    assert vocab.to_dict()["codebook_offsets"] == [100, 110]
    assert (vocab.bos, vocab.eos, vocab.empty, vocab.mask, vocab.size) == (120, 121, 122, 123, 124)


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (2, 15, "position 2 .* codebook 0: expected 0..9"),
        (1, 5, "EMPTY 22"),
        (3, 5, "codebook 1: expected 10..19"),
        (0, 99, "LM token 99"),
        (2, 10, "codebook 0: expected 0..9"),  # codebook 1's first code in a codebook-0 slot
        (3, 20, "codebook 1: expected 10..19"),  # BOS in a code slot
    ],
)
def test_lm_tokens_out_of_range_raise(position: int, value: int, message: str) -> None:
    vocab = LMVocab(2, 10)
    tokens = to_lm_tokens(torch.tensor([[[1, 2], [3, 4]]]), delay(2), vocab, bos=False, eos=False)
    tokens[0, position] = value
    with pytest.raises(ValueError, match=message):
        from_lm_tokens(tokens, delay(2), vocab)


def test_lm_tokens_reject_bad_lengths_and_codes() -> None:
    vocab = LMVocab(2, 10)
    with pytest.raises(ValueError, match="whole frames"):
        from_lm_tokens(torch.tensor([1, 11, 2]), parallel(2), vocab)
    with pytest.raises(ValueError, match="0..9"):
        to_lm_tokens(torch.tensor([[[10], [0]]]), parallel(2), vocab)
    with pytest.raises(ValueError, match="integer"):
        from_lm_tokens(torch.zeros(4), parallel(2), vocab)
    assert from_lm_tokens(
        torch.tensor([vocab.bos, 1, 11, vocab.eos]), parallel(2), vocab
    ).tolist() == [[1], [1]]


def test_pattern_validation_and_dict_round_trip() -> None:
    p = coarse_first(4, 2, fine="delay")
    assert Pattern.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="keys"):
        Pattern.from_dict({**p.to_dict(), "extra": 1})
    with pytest.raises(ValueError, match="sub-step"):
        Pattern("custom", (0, 0), (0, 2))
    with pytest.raises(ValueError, match="whole number"):
        delay(3).revert(torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, 3, T\)"):
        delay(3).build(torch.zeros(1, 2, 4, dtype=torch.long))


def test_numpy_token_files_and_vocab_dict_round_trip() -> None:
    vocab = LMVocab(3, 16, offset=32000)
    codes = np.random.default_rng(0).integers(0, 16, (3, 5), dtype=np.uint16)  # a (K, T) file
    tokens = to_lm_tokens(codes, delay(3), vocab)
    assert isinstance(tokens, np.ndarray) and tokens.dtype == np.int64 and tokens.ndim == 1
    back = from_lm_tokens(tokens, delay(3), vocab)
    assert isinstance(back, np.ndarray) and np.array_equal(back, codes)
    assert LMVocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    with pytest.raises(ValueError, match="bos"):
        LMVocab.from_dict({**vocab.to_dict(), "bos": 0})
    with pytest.raises(ValueError, match="integer"):
        to_lm_tokens(codes.astype(np.float32), delay(3), vocab)
