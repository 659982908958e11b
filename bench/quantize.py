"""Benchmark audiotok's quantizers against vector-quantize-pytorch (lucidrains) in one run.

Usage::

    python bench/quantize.py                    # B=16, N=750, D=128, codebook_size=1024
    python bench/quantize.py --repeats 3 --quick

Each row times one operation on ``z: (B, N, D)`` for audiotok and for the peer, interleaved
(audiotok, peer, audiotok, peer, ...) after warm-up so that a shared, noisy machine slows
both alike, and reports medians. Both sides use the same configuration: EMA codebooks with
decay 0.99, no k-means init, no dead-code restarts. The run also measures this machine's
fp32 matmul rate on the shape of the nearest-neighbour search (``(B N, D) x (D, K)``) and
the fraction of it that audiotok's search reaches, counting ``2 B N K D`` flops.

The peer is optional (``pip install -c constraints.txt vector-quantize-pytorch``, or the
``bench`` extra); without it the script prints a note and times audiotok alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from audiotok.quantize import FSQ, EMAVectorQuantizer, ResidualQuantizer
from audiotok.quantize import functional as QF

Op = Callable[[], object]


def _peer_module():
    try:
        import vector_quantize_pytorch as peer
    except ImportError:
        return None
    return peer


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


def _inference(module: torch.nn.Module, z: torch.Tensor) -> Op:
    module.eval()

    def op() -> object:
        with torch.no_grad():
            return module(z)

    return op


def _train_step(module: torch.nn.Module, z: torch.Tensor, unpack: Callable) -> Op:
    """Forward, a loss on the output plus the quantizer loss, backward (EMA update inside)."""
    module.train()

    def op() -> object:
        x = z.detach().requires_grad_()
        quantized, loss = unpack(module(x))
        (quantized.square().mean() + loss).backward()
        return x.grad

    return op


def _ours_unpack(out):
    return out.quantized, out.loss


def _peer_unpack(out):
    return out[0], out[2].sum()


def build_cases(args: argparse.Namespace, z: torch.Tensor) -> list[tuple[str, Op, Op | None]]:
    peer = _peer_module()
    d, k = args.dim, args.codebook_size

    def ours_vq() -> EMAVectorQuantizer:
        return EMAVectorQuantizer(d, k, decay=0.99)

    def ours_rvq() -> ResidualQuantizer:
        return ResidualQuantizer.from_factory(ours_vq, args.stages)

    def peer_vq():
        return peer.VectorQuantize(dim=d, codebook_size=k, decay=0.99) if peer else None

    def peer_rvq():
        if peer is None:
            return None
        return peer.ResidualVQ(dim=d, codebook_size=k, num_quantizers=args.stages, decay=0.99)

    def peer_fsq():
        return peer.FSQ(levels=[8, 5, 5, 5], dim=d) if peer else None

    def maybe(make, wrap):
        module = make()
        return None if module is None else wrap(module)

    encoder = ours_vq().eval()
    cases = [
        (
            "VQ inference (forward, eval)",
            _inference(ours_vq(), z),
            maybe(peer_vq, lambda m: _inference(m, z)),
        ),
        (
            "VQ encode (codes only)",
            lambda: encoder.encode(z),
            maybe(peer_vq, lambda m: _inference(m, z)),
        ),
        (
            "VQ train step (fwd+bwd+EMA)",
            _train_step(ours_vq(), z, _ours_unpack),
            maybe(peer_vq, lambda m: _train_step(m, z, _peer_unpack)),
        ),
        (
            f"RVQ-{args.stages} inference",
            _inference(ours_rvq(), z),
            maybe(peer_rvq, lambda m: _inference(m, z)),
        ),
        (
            f"RVQ-{args.stages} train step",
            _train_step(ours_rvq(), z, _ours_unpack),
            maybe(peer_rvq, lambda m: _train_step(m, z, _peer_unpack)),
        ),
        (
            "FSQ [8,5,5,5] inference",
            _inference(FSQ([8, 5, 5, 5], dim=d), z),
            maybe(peer_fsq, lambda m: _inference(m, z)),
        ),
        (
            "FSQ [8,5,5,5] train step",
            _train_step(FSQ([8, 5, 5, 5], dim=d), z, _ours_unpack),
            maybe(
                peer_fsq, lambda m: _train_step(m, z, lambda out: (out[0], out[0].new_zeros(())))
            ),
        ),
    ]
    return cases


def matmul_and_search(args: argparse.Namespace, z: torch.Tensor) -> tuple[float, float, float]:
    """(matmul GFLOP/s, search GFLOP/s, search seconds) on the search's own shape."""
    flat = z.reshape(-1, args.dim)
    codebook = torch.randn(args.codebook_size, args.dim)
    sqnorm = codebook.pow(2).sum(dim=1)
    out = flat.new_empty(flat.shape[0], args.codebook_size)
    t_mm, t_nn = _time_interleaved(
        [
            lambda: torch.mm(flat, codebook.t(), out=out),
            lambda: QF.nearest_code(flat, codebook, sqnorm),
        ],
        args.repeats,
        args.warmup,
    )
    assert t_mm is not None and t_nn is not None
    flops = 2.0 * flat.shape[0] * args.codebook_size * args.dim
    return flops / t_mm / 1e9, flops / t_nn / 1e9, t_nn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=750)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--codebook-size", type=int, default=1024)
    parser.add_argument("--stages", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    z = torch.randn(args.batch, args.frames, args.dim)
    vectors = args.batch * args.frames
    peer = _peer_module()
    print(
        f"torch {torch.__version__}, {args.threads} threads, z ({args.batch}, {args.frames}, "
        f"{args.dim}), codebook_size {args.codebook_size}, medians of {args.repeats}"
    )
    if peer is None:
        print("note: vector-quantize-pytorch is not installed; timing audiotok alone")
    else:
        from importlib.metadata import version

        print(f"peer: vector-quantize-pytorch {version('vector-quantize-pytorch')}")

    mm_rate, nn_rate, nn_time = matmul_and_search(args, z)
    print(
        f"\nfp32 matmul ({vectors}x{args.dim} @ {args.dim}x{args.codebook_size}): "
        f"{mm_rate:.1f} GFLOP/s"
    )
    print(
        f"nearest-neighbour search: {nn_time * 1e3:.1f} ms, {nn_rate:.1f} GFLOP/s = "
        f"{100 * nn_rate / mm_rate:.0f}% of the matmul rate\n"
    )

    header = "| operation | audiotok ms | peer ms | audiotok vectors/s | ratio |"
    print(header)
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in build_cases(args, z):
        t_ours, t_peer = _time_interleaved([ours, theirs], args.repeats, args.warmup)
        assert t_ours is not None
        peer_ms = f"{t_peer * 1e3:.1f}" if t_peer is not None else "-"
        ratio = f"{t_peer / t_ours:.2f}x" if t_peer is not None else "-"
        print(f"| {name} | {t_ours * 1e3:.1f} | {peer_ms} | {vectors / t_ours:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
