"""Benchmark the GPT prior: generation with and without the KV cache, against GPT-2, and training.

Usage::

    python bench/prior_speed.py --threads 1                 # 6 x 256, K = 8 x 1024, 1000 frames
    python bench/prior_speed.py --threads 1 --quick         # a smaller, faster run

Rows, timed in one run with the variants taking turns (medians after warm-up):

* generation after a prompt of ``--context`` frames (delay pattern: one step per frame) of
  ``--new`` frames, i.e. ``new + K - 1`` sampled steps, greedy, batch 1: audiotok with its
  request-sized static KV cache, audiotok recomputing the whole window every step
  (``use_cache=False``), and Hugging Face transformers' ``GPT2LMHeadModel`` of the same shape
  (layers, heads, width, MLP 4x, a ``K V`` output vocabulary, context) generating the same
  number of steps with its cache (``generate(..., use_cache=True)``). One step = one position
  = one forward through the stack; audiotok's step also yields K codes. Times include the
  prompt's prefill, the same for all.
* training: forward + backward + AdamW step on ``(--train-batch, K, --train-frames)`` codes,
  against GPT-2 on token ids of the same number of positions.

The peer is optional (``pip install -c constraints.txt transformers``, part of the ``bench``
extra); without it its rows are skipped with a note. Both models are at random init; greedy
decoding of random weights costs the same as of trained ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from audiotok.prior import GPT, GPTConfig, delay

Op = Callable[[], object]


def _time_interleaved(ops: list[Op | None], repeats: int, warmup: int) -> list[float | None]:
    """Median seconds of each op, run round-robin so that load changes hit all alike."""
    for _ in range(warmup):
        for op in ops:
            if op is not None:
                op()
    samples: list[list[float]] = [[] for _ in ops]
    for _ in range(repeats):
        for i, op in enumerate(ops):
            if op is None:
                continue
            start = time.perf_counter()
            op()
            samples[i].append(time.perf_counter() - start)
    return [statistics.median(s) if s else None for s in samples]


def _peer(args: argparse.Namespace, vocab: int, positions: int):
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=positions,
        n_embd=args.dim,
        n_layer=args.layers,
        n_head=args.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=None,
        pad_token_id=0,
        tie_word_embeddings=False,  # audiotok's head is not tied to its embeddings either
    )
    return GPT2LMHeadModel(config).eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--codebooks", type=int, default=8)
    parser.add_argument("--codebook-size", type=int, default=1024)
    parser.add_argument("--context", type=int, default=1000, help="prompt frames")
    parser.add_argument("--new", type=int, default=24, help="generated frames")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-frames", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="context 200, 8 new frames")
    args = parser.parse_args(argv)
    if args.quick:
        args.context, args.new, args.train_frames = 200, 8, 64

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    k, v, dev = args.codebooks, args.codebook_size, torch.device(args.device)
    pattern = delay(k)
    steps = pattern.num_steps(args.context + args.new) - args.context  # sampled steps
    block = pattern.num_steps(args.context + 4 * args.new) + 1
    config = GPTConfig(
        num_codebooks=k,
        codebook_size=v,
        pattern=pattern,
        block_size=max(block, pattern.num_steps(args.train_frames)),
        num_layers=args.layers,
        num_heads=args.heads,
        dim=args.dim,
    )
    ours = GPT(config).to(dev).eval()
    peer = _peer(args, k * v, config.block_size + steps)
    peer = peer.to(dev) if peer is not None else None
    prompt = torch.randint(0, v, (1, k, args.context), device=dev)
    prompt_ids = torch.randint(0, k * v, (1, pattern.num_steps(args.context)), device=dev)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {args.device}; prior "
        f"{args.layers} x {args.dim} ({args.heads} heads), K = {k} x V = {v}, delay pattern; "
        f"{sum(p.numel() for p in ours.parameters()) / 1e6:.2f} M parameters"
        + (f" (GPT-2 peer {sum(p.numel() for p in peer.parameters()) / 1e6:.2f} M)" if peer else "")
    )
    if peer is None:
        print("note: transformers is not installed; timing audiotok alone")

    cached = ours.generate(args.new, prompt=prompt, temperature=0.0)
    plain = ours.generate(args.new, prompt=prompt, temperature=0.0, use_cache=False)
    assert torch.equal(cached, plain), "cached and uncached generation differ"

    def peer_generate(n_steps: int) -> Op | None:
        if peer is None:
            return None

        def op() -> object:
            with torch.no_grad():
                return peer.generate(
                    prompt_ids,
                    attention_mask=torch.ones_like(prompt_ids),
                    max_new_tokens=n_steps,
                    min_new_tokens=n_steps,
                    do_sample=False,
                    use_cache=True,
                )

        return op

    long_new = 4 * args.new  # a longer run: (t_long - t_short) / extra steps = decode cost
    gen_times = _time_interleaved(
        [
            lambda: ours.generate(args.new, prompt=prompt, temperature=0.0),
            lambda: ours.generate(args.new, prompt=prompt, temperature=0.0, use_cache=False),
            peer_generate(steps),
            lambda: ours.generate(long_new, prompt=prompt, temperature=0.0),
            peer_generate(steps + long_new - args.new),
        ],
        args.repeats,
        args.warmup,
    )
    extra = long_new - args.new
    marginal = [
        (gen_times[3] - gen_times[0]) / extra,
        (gen_times[4] - gen_times[2]) / extra if peer is not None else None,
    ]

    train_codes = torch.randint(0, v, (args.train_batch, k, args.train_frames), device=dev)
    train_ids = torch.randint(0, k * v, (args.train_batch, pattern.num_steps(args.train_frames)))
    train_ids = train_ids.to(dev)
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    peer_opt = torch.optim.AdamW(peer.parameters(), lr=1e-4) if peer is not None else None

    def ours_step() -> object:
        ours.train()
        loss, _ = ours.loss(train_codes)
        ours_opt.zero_grad(set_to_none=True)
        loss.backward()
        ours_opt.step()
        return loss

    def peer_step() -> object:
        peer.train()
        loss = peer(train_ids, labels=train_ids).loss
        peer_opt.zero_grad(set_to_none=True)
        loss.backward()
        peer_opt.step()
        return loss

    train_times = _time_interleaved(
        [ours_step, peer_step if peer is not None else None], args.repeats, args.warmup
    )

    positions = args.train_batch * pattern.num_steps(args.train_frames)
    rows = [
        ("generate, KV cache (audiotok)", gen_times[0], steps, args.new * k),
        ("generate, no cache (audiotok)", gen_times[1], steps, args.new * k),
        ("generate, KV cache (GPT-2, transformers)", gen_times[2], steps, None),
        ("train step, fwd+bwd+AdamW (audiotok)", train_times[0], positions, train_codes.numel()),
        ("train step, fwd+bwd+AdamW (GPT-2)", train_times[1], positions, None),
    ]
    print(
        f"\nload average {os.getloadavg()[0]:.1f}; generation: prompt {args.context} frames, "
        f"{args.new} new frames = {steps} steps; "
        f"training: batch {args.train_batch} x {args.train_frames} frames; "
        f"medians of {args.repeats}\n"
    )
    print("| row | median s | steps/s | codes/s |")
    print("|---|---:|---:|---:|")
    for name, seconds, n_steps, n_codes in rows:
        if seconds is None:
            print(f"| {name} | - | - | - |")
            continue
        codes = f"{n_codes / seconds:,.0f}" if n_codes else "-"
        print(f"| {name} | {seconds:.3f} | {n_steps / seconds:,.1f} | {codes} |")
    print()
    print(
        f"decode cost per extra step at ~{args.context} frames of context (from a {long_new}-frame "
        f"run): audiotok {1000 * marginal[0]:.1f} ms"
        + (f", GPT-2 {1000 * marginal[1]:.1f} ms" if marginal[1] is not None else "")
        + f"; audiotok without cache {1000 * gen_times[1] / steps:.0f} ms per step"
    )
    print(f"KV cache vs no cache: {gen_times[1] / gen_times[0]:.1f}x faster generation")
    if peer is not None:
        print(f"audiotok vs GPT-2 (both cached): {gen_times[2] / gen_times[0]:.2f}x generation")
        print(f"audiotok vs GPT-2: {train_times[1] / train_times[0]:.2f}x training step")


if __name__ == "__main__":
    main()
