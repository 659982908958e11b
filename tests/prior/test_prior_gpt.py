"""The causal prior: cached == uncached logits, loss masks, overfitting, config, save/load."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from tiny_priors import PATTERNS, K, V, tiny_gpt

from audiotok.errors import UserError
from audiotok.prior import GPT, GPTConfig, Pattern, delay, flatten, load_prior


def _incremental_logits(model: GPT, seq: torch.Tensor, labels: torch.Tensor | None, split: int):
    """Prefill the start token + ``split`` steps, then feed the rest one step at a time."""
    b, _, s = seq.shape
    cache = model.transformer.new_cache(b, s, seq.to(torch.float32))
    x = torch.cat([model.start_embedding(labels, b), model.embed(seq[..., :split])], dim=1)
    out = [model.run(x, torch.arange(split + 1), cache=cache)]
    for i in range(split, s - 1):
        step = model.embed(seq[..., i : i + 1])
        out.append(model.run(step, torch.tensor([i + 1]), cache=cache))
    assert cache.length == s == cache.capacity
    return torch.cat(out, dim=2)


@pytest.mark.parametrize("split", [0, 4])
def test_cached_logits_equal_uncached(pattern: Pattern, split: int) -> None:
    model = tiny_gpt(pattern, num_classes=3)
    codes = torch.randint(0, V, (2, K, 6))
    labels = torch.tensor([0, 3])  # a class and the null class
    seq, _ = pattern.build(codes)
    full = model(seq, labels)
    with torch.no_grad():
        cached = _incremental_logits(model, seq, labels, split)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


def test_logits_are_causal(pattern: Pattern) -> None:
    model = tiny_gpt(pattern)
    seq, _ = pattern.build(torch.randint(0, V, (1, K, 5)))
    changed = seq.clone()
    changed[:, :, 6:] = torch.where(changed[:, :, 6:] >= 0, (changed[:, :, 6:] + 1) % V, -1)
    torch.testing.assert_close(model(seq)[:, :, :7], model(changed)[:, :, :7])


def test_loss_counts_real_slots_only(pattern: Pattern) -> None:
    model = tiny_gpt(pattern)
    codes = torch.randint(0, V, (2, K, 5))
    loss, per_codebook = model.loss(codes)
    seq, mask = pattern.build(codes)
    logp = model(seq).log_softmax(-1)  # (B, K, S, V)
    manual = torch.stack(
        [-logp[:, k, mask[k]].gather(-1, seq[:, k, mask[k], None]).mean() for k in range(K)]
    )
    torch.testing.assert_close(per_codebook, manual)
    torch.testing.assert_close(loss, manual.mean())
    assert per_codebook.shape == (K,) and not per_codebook.requires_grad and loss.requires_grad


def test_embedding_ignores_empty_slots() -> None:
    model = tiny_gpt(delay(K))
    seq = torch.tensor([[[1], [-1], [-1]]])
    only = torch.tensor([[[1], [0], [0]]])
    expected = model.tok_emb(torch.tensor([1]))[None]
    torch.testing.assert_close(model.embed(seq), expected)
    assert not torch.allclose(model.embed(only), expected)


@pytest.mark.parametrize("name", ["delay", "flatten"])
def test_tiny_gpt_overfits_a_fixed_sequence(name: str) -> None:
    model = tiny_gpt(PATTERNS[name]).train()
    codes = torch.randint(0, V, (2, K, 12), generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, _ = model.loss(codes)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > math.log(V) - 0.3  # starts near uniform
    assert loss.item() < 0.2, f"loss {loss.item():.3f} after 60 steps"


def test_class_dropout_uses_the_null_class() -> None:
    model = tiny_gpt(delay(K), num_classes=2)
    codes = torch.randint(0, V, (2, K, 4))
    labels = torch.tensor([0, 1])
    null = model.loss(codes, torch.tensor([2, 2]))[0]
    model = GPT(GPTConfig(**{**model.config.to_dict(), "pattern": delay(K), "class_dropout": 1.0}))
    model.load_state_dict(tiny_gpt(delay(K), num_classes=2).state_dict())
    model.train()
    torch.testing.assert_close(model.loss(codes, labels)[0], null)
    model.eval()  # no dropping outside training
    assert not torch.allclose(model.loss(codes, labels)[0], null)
    with pytest.raises(ValueError, match="0..2"):
        model.loss(codes, torch.tensor([0, 3]))


def test_score_reports_bits_and_kbps() -> None:
    model = tiny_gpt(delay(K)).train()
    codes = torch.randint(0, V, (2, K, 5))
    report = model.score(codes, frame_rate=75.0)
    assert model.training, "score restores the mode"
    per_codebook = model.eval().loss(codes)[1] / math.log(2)
    assert report["bits_per_codebook"] == pytest.approx(per_codebook.tolist(), rel=1e-5)
    assert report["bits_per_frame"] == pytest.approx(sum(report["bits_per_codebook"]))
    assert report["kbps"] == pytest.approx(report["bits_per_frame"] * 75 / 1000)
    assert report["raw_kbps"] == pytest.approx(K * math.log2(V) * 75 / 1000)
    assert report["num_frames"] == 10
    with pytest.raises(ValueError, match="0..10"):
        model.score(codes + V)


def test_context_limit_and_config_checks() -> None:
    model = tiny_gpt(flatten(K), block_size=8)
    model(flatten(K).build(torch.zeros(1, K, 2, dtype=torch.long))[0])  # 6 steps fit
    with pytest.raises(ValueError, match="context"):
        model(flatten(K).build(torch.zeros(1, K, 3, dtype=torch.long))[0])
    with pytest.raises(ValueError, match="codebooks"):
        GPTConfig(num_codebooks=4, codebook_size=V, pattern=delay(K))
    with pytest.raises(ValueError, match="head"):
        GPTConfig(num_codebooks=K, codebook_size=V, pattern=delay(K), dim=30, num_heads=4)


def test_config_dict_round_trip_is_strict() -> None:
    config = tiny_gpt(PATTERNS["coarse_first_delay"], num_classes=4).config
    d = json.loads(json.dumps(config.to_dict()))
    assert GPTConfig.from_dict(d) == config
    with pytest.raises(ValueError, match=r"unknown GPTConfig key\(s\): n_layer"):
        GPTConfig.from_dict({**d, "n_layer": 3})
    named = GPTConfig.from_dict({**d, "pattern": "flatten"})
    assert named.pattern == flatten(K) and named.to_dict()["pattern"]["substeps"] == [0, 1, 2]


def test_save_load_gives_identical_logits(tmp_path, pattern: Pattern) -> None:
    model = tiny_gpt(pattern, num_classes=2)
    path = model.save_pretrained(tmp_path / "prior")
    meta = json.loads((path / "config.json").read_text())
    assert meta["format_version"] == 1 and meta["family"] == "prior_gpt"
    loaded = load_prior(path)
    assert isinstance(loaded, GPT) and not loaded.training and loaded.config == model.config
    seq, _ = pattern.build(torch.randint(0, V, (2, K, 4)))
    labels = torch.tensor([1, 2])
    assert torch.equal(loaded(seq, labels), model(seq, labels))


def test_load_errors_are_one_line_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="not a saved prior"):
        load_prior(tmp_path)
    path = tiny_gpt(delay(K)).save_pretrained(tmp_path / "p")
    meta = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(UserError, match="format version 99"):
        load_prior(path)
    (path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "x": 1}}))
    with pytest.raises(UserError, match=r"unknown GPTConfig key\(s\): x"):
        load_prior(path)
    huge = {**meta["config"], "dim": 1 << 16, "num_heads": 1 << 8, "num_layers": 4}
    (path / "config.json").write_text(json.dumps({**meta, "config": huge}))
    with pytest.raises(UserError, match="more than model.safetensors holds"):
        load_prior(path)  # refused before allocating anything
    (path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "dim": 16}}))
    with pytest.raises(UserError, match="weights do not match the config"):
        load_prior(path)
    (path / "config.json").write_text(json.dumps({**meta, "family": "prior_rnn"}))
    with pytest.raises(UserError, match="unknown prior family 'prior_rnn'"):
        load_prior(path)


def test_cross_entropy_matches_torch_on_flatten() -> None:
    # flatten = one vocabulary of K V ids and one head: logits outside the step's codebook
    # are simply not part of the codebook's V-way softmax
    model = tiny_gpt(flatten(K))
    codes = torch.randint(0, V, (1, K, 3))
    seq, mask = flatten(K).build(codes)
    logits = model(seq)  # (1, K, S, V)
    k_of_step = mask.float().argmax(0)  # codebook of each step
    picked = logits[0, k_of_step, torch.arange(seq.shape[2])]  # (S, V)
    targets = seq[0, k_of_step, torch.arange(seq.shape[2])]
    torch.testing.assert_close(F.cross_entropy(picked, targets), model.loss(codes)[0])


def test_context_frames_is_the_longest_fitting_clip(pattern: Pattern) -> None:
    model = tiny_gpt(pattern, block_size=23)
    w = model.context_frames
    assert pattern.num_steps(w) <= 23 < pattern.num_steps(w + 1)


def test_count_from_counts_only_later_frames(pattern: Pattern) -> None:
    model = tiny_gpt(pattern)
    codes = torch.randint(0, V, (2, K, 6))
    sums, counts = model.nll_sums(codes)
    later, later_counts = model.nll_sums(codes, count_from=4)
    assert counts.tolist() == [12] * K and later_counts.tolist() == [4] * K
    assert bool((later < sums).all())


def test_long_codes_are_scored_in_strided_windows(pattern: Pattern) -> None:
    model = tiny_gpt(pattern, block_size=20)
    w = model.context_frames
    t = 2 * w + 3
    codes = torch.randint(0, V, (2, K, t))
    report = model.score(codes)
    assert report["num_frames"] == 2 * t
    # manual: windows [0, w), [s, s + w), [2s, ...), each counting the frames not yet counted
    stride, sums, counts, done, begin = max(1, w // 2), 0, 0, 0, 0
    while done < t:
        end = min(begin + w, t)
        s, c = model.nll_sums(codes[..., begin:end], count_from=done - begin)
        sums, counts, done, begin = sums + s, counts + c, end, begin + stride
    assert counts.tolist() == [2 * t] * K
    expected = (sums / counts / math.log(2)).tolist()
    assert report["bits_per_codebook"] == pytest.approx(expected, rel=1e-5)
    short = codes[..., :w]  # one window: the plain mean
    plain = (model.per_codebook_nll(short) / math.log(2)).tolist()
    assert model.score(short)["bits_per_codebook"] == pytest.approx(plain, rel=1e-5)
