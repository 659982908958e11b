"""Lossless compression of codes ``(K, T)`` with a GPT prior driving an arithmetic coder.

A prior that spends ``b`` bits per frame on codes can store them in about ``b`` bits: each
code is arithmetic-coded (entropy.py) under the prior's predicted distribution, as EnCodec's
entropy-coded bitstream does with its small Transformer LM (Defossez et al.,
arXiv:2210.13438, section 3.3), here for any :class:`~audiotok.prior.gpt.GPT` and pattern.

**The decoder's computation is the encoder's.** The decoder only knows a step's codes after
decoding them, so it must run the prior step by step with its KV cache; one float that differs
between the two sides moves a frequency-table boundary and the rest of the stream decodes to
garbage. Both sides therefore walk the step grid with the *same* object, an incremental
stepper with a static KV cache (batch 1, fp32, eval mode, one thread), feeding it the same
columns in the same order; the encoder simply knows them in advance. Past its context (by
default ``block_size`` positions; a prior trained on shorter windows codes better with its
training length, which the caller can pass as ``context``) the same object slides its window (a prefill of the last ~3/4 of the context, restarted at a
frame boundary so that it looks like a sequence start, as in training), so long files need
nothing extra. Per step only the slots that hold a code are coded (a delay
pattern's edges and a flatten pattern's other codebooks are not), in codebook order.

Bit-exactness holds between runs of the same software on the same kind of machine; a float
kernel that differs elsewhere (another CPU's SIMD path, a GPU) can break it. lmcodes.py
therefore stores a checksum of the codes, so such a decode fails loudly instead of silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from audiotok.prior.entropy import FREQ_BITS, ArithmeticDecoder, ArithmeticEncoder, quantize_pmf
from audiotok.prior.gpt import GPT
from audiotok.prior.patterns import EMPTY_CODE

__all__ = ["LMCodingStats", "prior_fingerprint", "encode_codes", "decode_codes"]

#: config fields that change the probabilities but not the weights' names or shapes
_COMPUTE_FIELDS = ("pattern", "block_size", "num_heads", "rope_base")


@dataclass(frozen=True)
class LMCodingStats:
    """What coding one item cost, next to what the prior says it should.

    Attributes:
        num_bytes: length of the bitstream.
        num_symbols: codes coded (K T).
        model_bits: ``sum -log2 p`` of the codes under the prior's float64 softmax, the
            cross-entropy the coder aims at.
        table_bits: the same under the integer frequency tables actually used.
    """

    num_bytes: int
    num_symbols: int
    model_bits: float
    table_bits: float

    @property
    def overhead(self) -> float:
        """``8 num_bytes / model_bits - 1``: the share the stream exceeds the cross-entropy."""
        return 8 * self.num_bytes / self.model_bits - 1 if self.model_bits else math.inf


def prior_fingerprint(prior: GPT) -> str:
    """12 hex digits naming what a prior's probabilities depend on.

    A SHA-256 over every state-dict tensor (name, dtype, shape, bytes) and the config fields
    that shape the computation without showing in the weights (pattern, context, heads, RoPE
    base); labels such as ``tokenizer_id``, and config fields added later with defaults, do
    not change it, so a file stays readable as long as the prior computes the same.
    """
    h = hashlib.sha256()
    cfg = prior.config.to_dict()
    h.update(json.dumps({k: cfg[k] for k in _COMPUTE_FIELDS}, sort_keys=True).encode())
    for name, tensor in sorted(prior.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def _check_prior(prior: GPT, context: int | None) -> int:
    """The context to use; ValueError for a prior or context that cannot code."""
    if not isinstance(prior, GPT):
        raise ValueError(f"LM coding needs a causal GPT prior, got {type(prior).__name__}")
    if any(p.dtype != torch.float32 for p in prior.parameters()):
        raise ValueError("LM coding needs a float32 prior (both sides must compute alike)")
    block = prior.config.block_size
    context = block if context is None else context
    if not 2 <= context <= block:
        raise ValueError(f"context must be in 2..{block} positions, got {context}")
    return context


@contextlib.contextmanager
def _exact_mode(prior: GPT) -> Iterator[None]:
    """Eval mode, no grad, one thread (a reduction split over threads may round otherwise)."""
    was_training, threads = prior.training, torch.get_num_threads()
    prior.eval()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        prior.train(was_training)


class _Stepper:
    """The prior over a step grid one step at a time: the one computation both sides run.

    A static KV cache holds the start token and the window's grid columns ``[lo, s]``. When
    the next column would not fit in ``context`` positions, the window restarts at a frame
    boundary ``lo = f0 P`` about ``3/4 context`` steps back (generate.py's ratio) and is
    prefilled from scratch with the codes of frames before ``f0`` left out, so the window
    looks like the start of a sequence, as the prior saw windows in training (a delay
    pattern's first steps hold codebook 0 only). Positions re-base to 0 at the start token.
    """

    def __init__(
        self, prior: GPT, grid: Tensor, present: Tensor, class_label: int | None, context: int
    ) -> None:
        cfg, device = prior.config, prior.offsets.device
        pattern = cfg.pattern
        self.prior, self.grid, self.present = prior, grid, present  # (1, K, S), (K, S)
        self.steps_per_frame = pattern.steps_per_frame
        # step of codebook k's code of frame f0 is f0 P + first[k]
        self.first = pattern.positions(1, device)[:, 0]  # (K,)
        self.capacity = min(context, grid.shape[2])
        self.keep = max(1, 3 * context // 4 - 1)
        labels = None if class_label is None else torch.tensor([class_label], device=device)
        self.start = prior.start_embedding(labels, 1)  # (1, 1, D)
        self.cache = prior.transformer.new_cache(1, self.capacity, self.start)
        k, v = cfg.num_codebooks, cfg.codebook_size
        self.heads = prior.head.weight.view(k, v, -1)  # (K, V, D)
        self.lo = 0

    def _columns(self, c0: int, c1: int) -> Tensor:
        """Grid columns ``[c0, c1)`` as the window sees them: ``(1, K, c1 - c0)``."""
        cols = self.grid[:, :, c0:c1]
        if self.lo == 0:
            return cols
        c = torch.arange(c0, c1, device=cols.device)
        older = c[None] < (self.lo + self.first)[:, None]  # (K, L) codes of frames < f0
        return cols.masked_fill(older[None], EMPTY_CODE)

    def _logits(self, hidden: Tensor, s: int) -> Tensor:
        """Logits ``(K', V)`` of the codebooks step ``s`` holds, from ``hidden: (1, L, D)``."""
        h, need = hidden[0, -1], self.present[:, s]
        if bool(need.all()):  # one matrix-vector product, no copy of the (K V, D) head
            return F.linear(h, self.prior.head.weight).view(need.shape[0], -1)
        rows = need.nonzero()[:, 0].tolist()  # none at all in some patterns' trailing steps
        if not rows:
            return h.new_zeros(0, self.heads.shape[1])
        return torch.stack([F.linear(h, self.heads[k]) for k in rows])

    def prefill(self, lo: int, upto: int) -> Tensor:
        """Run start token + columns ``[lo, upto)`` from scratch; logits of step ``upto``."""
        self.lo = lo
        x = torch.cat([self.start, self.prior.embed(self._columns(lo, upto))], dim=1)
        self.cache.reset()
        positions = torch.arange(x.shape[1], device=x.device)
        return self._logits(self.prior.transform(x, positions, cache=self.cache), upto)

    def feed(self, s: int) -> Tensor:
        """Append column ``s`` (its codes known); logits of step ``s + 1``."""
        j = s + 1 - self.lo  # window position of column s
        if j + 1 > self.capacity:
            p = self.steps_per_frame
            f0 = max(0, min(-(-(s + 1 - self.keep) // p), s // p))
            return self.prefill(f0 * p, s + 1)
        positions = torch.tensor([j], device=self.start.device)
        x = self.prior.embed(self._columns(s, s + 1))
        return self._logits(self.prior.transform(x, positions, cache=self.cache), s + 1)


def _walk(
    prior: GPT, grid: Tensor, present: Tensor, class_label: int | None, context: int
) -> Iterator[tuple[int, list[int], np.ndarray, Tensor]]:
    """Visit the steps of ``grid: (1, K, S)`` in order, one table per present slot.

    Yields ``(s, rows, cdf, probs)``: the step, the codebooks it holds, their tables
    ``(len(rows), V + 1)`` and float64 probabilities ``(len(rows), V)``. Before asking for the
    next step the consumer must have written ``grid[0, rows, s]`` (the decoder) or left it as
    it was (the encoder): the next step's logits are computed from it.
    """
    steps = grid.shape[2]
    stepper = _Stepper(prior, grid, present, class_label, context)
    logits = stepper.prefill(0, 0)
    for s in range(steps):
        rows = present[:, s].nonzero()[:, 0].tolist()
        probs = logits.double().softmax(dim=-1)  # (K', V)
        yield s, rows, quantize_pmf(probs), probs
        if s + 1 < steps:
            logits = stepper.feed(s)


def _as_codes(codes: Tensor | np.ndarray, prior: GPT) -> Tensor:
    t = (
        torch.from_numpy(np.asarray(codes).astype(np.int64))
        if isinstance(codes, np.ndarray)
        else codes
    )
    k, v = prior.config.num_codebooks, prior.config.codebook_size
    if t.dim() != 2 or t.shape[0] != k or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"codes must be integer ({k}, T) for this prior, got {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= v):
        raise ValueError(f"codes must be in 0..{v - 1}")
    return t.long()


def encode_with_stats(
    prior: GPT,
    codes: Tensor | np.ndarray,
    *,
    class_label: int | None = None,
    context: int | None = None,
) -> tuple[bytes, LMCodingStats]:
    """:func:`encode_codes`, also returning what the stream cost against the prior's bits."""
    context = _check_prior(prior, context)
    codes = _as_codes(codes, prior)
    if codes.shape[1] == 0:
        return b"", LMCodingStats(0, 0, 0.0, 0.0)
    seq, present = prior.config.pattern.build(codes[None].to(prior.offsets.device))
    symbols = seq[0].cpu()  # (K, S)
    enc = ArithmeticEncoder(FREQ_BITS)
    model_bits = table_bits = 0.0
    with _exact_mode(prior):
        for s, rows, cdf, probs in _walk(prior, seq, present, class_label, context):
            syms = symbols[rows, s].tolist()
            for i, c in enumerate(syms):
                lo, hi = int(cdf[i, c]), int(cdf[i, c + 1])
                enc.encode(lo, hi)
                table_bits += FREQ_BITS - math.log2(hi - lo)
            model_bits -= float(probs[range(len(rows)), syms].log2().sum())
    data = enc.finish()
    return data, LMCodingStats(len(data), codes.numel(), model_bits, table_bits)


def encode_codes(
    prior: GPT,
    codes: Tensor | np.ndarray,
    *,
    class_label: int | None = None,
    context: int | None = None,
) -> bytes:
    """Arithmetic-code ``codes: (K, T)`` under ``prior`` (see the module docstring).

    Args:
        prior: a float32 :class:`~audiotok.prior.gpt.GPT` with K codebooks of V codes.
        codes: integer codes in ``0..V-1``, any T (past the context the window slides).
        class_label: the start token's class; None (default) is the unconditional one.
        context: the most positions (start token + steps) the prior sees at once, in
            ``2..block_size``; default ``block_size``. Past it the window slides.

    Returns:
        The bitstream (empty for T = 0); :func:`decode_codes` with the same prior, K, T and
        label restores ``codes`` exactly.

    Raises:
        ValueError: not a float32 GPT, or codes of the wrong shape or range.
    """
    return encode_with_stats(prior, codes, class_label=class_label, context=context)[0]


def decode_codes(
    prior: GPT,
    data: bytes,
    num_codebooks: int,
    num_frames: int,
    *,
    class_label: int | None = None,
    context: int | None = None,
) -> Tensor:
    """Inverse of :func:`encode_codes`: codes ``(K, T)`` long on the prior's device.

    ``class_label`` and ``context`` must be the encoder's. Any bytes decode to *some* codes (arithmetic decoding cannot fail); check the result
    against a checksum to detect a corrupt stream or another prior.

    Raises:
        ValueError: not a float32 GPT, or ``num_codebooks`` is not the prior's K.
    """
    context = _check_prior(prior, context)
    cfg, device = prior.config, prior.offsets.device
    if num_codebooks != cfg.num_codebooks or num_frames < 0:
        raise ValueError(
            f"the prior codes {cfg.num_codebooks} codebooks, asked for {num_codebooks} "
            f"x {num_frames} frames"
        )
    if num_frames == 0:
        return torch.zeros(num_codebooks, 0, dtype=torch.long, device=device)
    pattern = cfg.pattern
    present = pattern.mask(num_frames, device)  # (K, S)
    grid = torch.full((1, num_codebooks, present.shape[1]), -1, dtype=torch.long, device=device)
    dec = ArithmeticDecoder(data, FREQ_BITS)
    with _exact_mode(prior):
        for s, rows, cdf, _ in _walk(prior, grid, present, class_label, context):
            decoded = [dec.decode(cdf[i]) for i in range(len(rows))]
            grid[0, rows, s] = torch.tensor(decoded, dtype=torch.long, device=device)
    return pattern.revert(grid)[0]
