"""Generation: cache, ragged batches, prompts, sliding window, streaming, CFG, seeding."""

from __future__ import annotations

import pytest
import torch
from tiny_priors import PATTERNS, K, V, tiny_gpt

import audiotok.prior.generate as gen
from audiotok.prior import Pattern, delay


def _prompt(t: int, b: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (b, K, t), generator=torch.Generator().manual_seed(seed))


def test_cached_generation_equals_uncached(pattern: Pattern) -> None:
    model = tiny_gpt(pattern, num_classes=2)
    labels = torch.tensor([0, 1])
    for kwargs in ({"temperature": 0.0}, {"temperature": 1.0, "top_k": 5}):
        runs = [
            model.generate(
                7,
                prompt=_prompt(3, 2),
                class_labels=labels,
                use_cache=use_cache,
                generator=torch.Generator().manual_seed(3),
                **kwargs,
            )
            for use_cache in (True, False)
        ]
        assert torch.equal(runs[0], runs[1])


def test_ragged_batch_equals_each_alone(pattern: Pattern) -> None:
    model = tiny_gpt(pattern)
    prompts = [_prompt(t, seed=t)[0] for t in (0, 5, 2)]
    batch = model.generate(6, prompt=prompts, temperature=0.0)
    for i, p in enumerate(prompts):
        alone = model.generate(6, prompt=p[None], temperature=0.0)
        assert torch.equal(batch[i], alone[0]), f"item {i} (prompt of {p.shape[1]} frames)"


def test_continuation_of_own_output_is_consistent(pattern: Pattern) -> None:
    # prompt slots are kept (a delay pattern's prompt reaches into later steps): greedy
    # decoding from prompt + its own first frame gives the rest of the same continuation
    model = tiny_gpt(pattern)
    prompt = _prompt(4)
    out = model.generate(5, prompt=prompt, temperature=0.0)
    again = model.generate(4, prompt=torch.cat([prompt, out[..., :1]], dim=2), temperature=0.0)
    assert torch.equal(again, out[..., 1:])


def test_codes_are_valid_and_seeded_sampling_reproduces(pattern: Pattern) -> None:
    model = tiny_gpt(pattern)

    def draw(seed: int) -> torch.Tensor:
        return model.generate(8, batch_size=3, generator=torch.Generator().manual_seed(seed))

    first = draw(0)
    assert first.shape == (3, K, 8) and first.dtype == torch.long
    assert bool(((first >= 0) & (first < V)).all()), "an EMPTY or special id was sampled"
    assert torch.equal(first, draw(0))
    assert not torch.equal(first, draw(1))


def test_streaming_yields_each_frame_once_in_order_as_soon_as_complete(
    pattern: Pattern, monkeypatch
) -> None:
    model = tiny_gpt(pattern)
    steps, frames = [0], []
    real_sample = gen.sample

    def counting_sample(*args, **kwargs):
        steps[0] += 1
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(gen, "sample", counting_sample)
    prompt = _prompt(2, 2)
    out = model.generate(
        5, prompt=prompt, temperature=0.0, callback=lambda f: frames.append((steps[0], f))
    )
    assert [f.shape for _, f in frames] == [(2, K)] * 5
    assert torch.equal(torch.stack([f for _, f in frames], dim=2), out)
    # frame j is complete after the step holding its last code
    positions = pattern.positions(2 + 5)
    first_free = int(positions[:, 2].min())
    expected = (positions[:, 2:].amax(0) - first_free + 1).tolist()
    assert [s for s, _ in frames] == expected
    if pattern.kind == "delay":
        assert expected[0] == K  # K-1 steps after its first code


def test_sliding_window_past_the_context(pattern: Pattern, monkeypatch) -> None:
    model = tiny_gpt(pattern, block_size=16)
    capacities = []
    real = model.transformer.new_cache

    def recording(batch, length, like):
        capacities.append(length)
        return real(batch, length, like)

    monkeypatch.setattr(model.transformer, "new_cache", recording)
    prompt = _prompt(6, 2)  # flatten: 18 steps, already past the 16-position context
    cached = model.generate(12, prompt=prompt, temperature=0.0)
    plain = model.generate(12, prompt=prompt, temperature=0.0, use_cache=False)
    assert capacities == [16], "the cache is never larger than the context"
    assert cached.shape == (2, K, 12) and torch.equal(cached, plain)
    assert bool(((cached >= 0) & (cached < V)).all())


def test_cache_is_sized_to_the_request(monkeypatch) -> None:
    model = tiny_gpt(delay(K), block_size=96)
    capacities = []
    real = model.transformer.new_cache
    monkeypatch.setattr(
        model.transformer,
        "new_cache",
        lambda b, n, like: capacities.append((b, n)) or real(b, n, like),
    )
    model.generate(4, prompt=_prompt(3, 2), temperature=0.0)
    # 3 prompt + 4 new frames, K - 1 delay steps: 9 steps + start token - the unfed last step
    assert capacities == [(2, delay(K).num_steps(7))]


def test_cfg_scale_one_is_conditional_and_zero_is_unconditional() -> None:
    model = tiny_gpt(delay(K), num_classes=3)
    labels = torch.tensor([0, 2])
    null = torch.full((2,), model.null_class)

    def run(labels, **kw):
        return model.generate(6, prompt=_prompt(2, 2), class_labels=labels, temperature=0.0, **kw)

    assert torch.equal(run(labels, cfg_scale=1.0), run(labels))
    assert torch.equal(run(labels, cfg_scale=0.0), run(null))
    assert torch.equal(run(labels, cfg_scale=0.0), run(None))
    guided = run(labels, cfg_scale=3.0)
    assert guided.shape == (2, K, 6)
    with pytest.raises(ValueError, match="class_labels"):
        run(None, cfg_scale=2.0)
    with pytest.raises(ValueError, match="num_classes"):
        tiny_gpt(delay(K)).generate(2, class_labels=labels, cfg_scale=2.0)


def test_top_k_one_is_greedy_and_bad_prompts_raise() -> None:
    model = tiny_gpt(PATTERNS["coarse_first"])
    greedy = model.generate(5, prompt=_prompt(3), temperature=0.0)
    assert torch.equal(model.generate(5, prompt=_prompt(3), top_k=1), greedy)
    assert model.generate(0, prompt=_prompt(3)).shape == (1, K, 0)
    with pytest.raises(ValueError, match="0..10"):
        model.generate(2, prompt=_prompt(3) + V)
    with pytest.raises(ValueError, match="batch_size 3 disagrees"):
        model.generate(2, prompt=_prompt(3), batch_size=3)
    with pytest.raises(ValueError, match=r"\(3, T0\)"):
        model.generate(2, prompt=torch.zeros(1, 2, 3, dtype=torch.long))


def test_guided_ragged_batch_equals_each_alone_and_uncached() -> None:
    model = tiny_gpt(PATTERNS["coarse_first_delay"], num_classes=2, block_size=24)
    prompts = [_prompt(t, seed=t)[0] for t in (1, 6)]
    labels = torch.tensor([1, 0])
    kwargs = {"temperature": 0.0, "cfg_scale": 2.5}
    batch = model.generate(5, prompt=prompts, class_labels=labels, **kwargs)
    plain = model.generate(5, prompt=prompts, class_labels=labels, use_cache=False, **kwargs)
    assert torch.equal(batch, plain)
    for i, p in enumerate(prompts):
        alone = model.generate(5, prompt=p[None], class_labels=labels[i : i + 1], **kwargs)
        assert torch.equal(batch[i], alone[0])


def test_after_a_slide_the_context_is_the_start_token_and_recent_steps(monkeypatch) -> None:
    # parallel pattern: one step per frame. block_size 16, so the cache holds the start token
    # + 15 steps; feeding step 15 slides to the last 3 * 16 // 4 - 1 = 11 steps (5..15), so
    # frame 16's logits are those a fresh call computes from frames 5..15 alone
    model = tiny_gpt(PATTERNS["parallel"], block_size=16)
    seen: list[torch.Tensor] = []
    real_sample = gen.sample

    def recording_sample(logits, **kwargs):
        seen.append(logits.clone())
        return real_sample(logits, **kwargs)

    monkeypatch.setattr(gen, "sample", recording_sample)
    prompt = _prompt(5)
    frames = torch.cat([prompt, model.generate(15, prompt=prompt, temperature=0.0)], dim=2)
    logits = {5 + i: x for i, x in enumerate(seen)}  # frame -> the logits it was drawn from
    for frame, context in (
        (15, frames[..., :15]),
        (16, frames[..., 5:16]),
        (17, frames[..., 5:17]),
    ):
        seen.clear()
        model.generate(1, prompt=context, temperature=0.0)
        torch.testing.assert_close(logits[frame], seen[0], atol=1e-5, rtol=1e-5)


def test_greedy_generation_matches_a_naive_loop_over_forward(pattern: Pattern) -> None:
    # reference: rebuild the grid step by step and take the argmax of the full forward
    model = tiny_gpt(pattern)
    prompt, n = _prompt(3, 2), 4
    grid, present = pattern.build(torch.cat([prompt, torch.full((2, K, n), -1)], dim=2))
    known = grid >= 0
    first = int((present & ~known[0]).any(dim=0).nonzero()[0])
    for s in range(first, grid.shape[2]):
        best = model(grid[..., : s + 1])[:, :, s].argmax(-1)  # (B, K)
        grid[:, :, s] = torch.where(
            present[:, s], torch.where(known[:, :, s], grid[:, :, s], best), -1
        )
    expected = pattern.revert(grid)[..., 3:]
    assert torch.equal(model.generate(n, prompt=prompt, temperature=0.0), expected)
