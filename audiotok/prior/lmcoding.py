"""Lossless compression of codes ``(K, T)`` with a GPT prior driving an arithmetic coder.

A prior that spends ``b`` bits per frame on codes can store them in about ``b`` bits: each
code is arithmetic-coded (entropy.py) under the prior's predicted distribution, as EnCodec's
entropy-coded bitstream does with its small Transformer LM (Defossez et al.,
arXiv:2210.13438, section 3.3), here for any :class:`~audiotok.prior.gpt.GPT` and pattern.

**The decoder's computation is the encoder's.** The decoder only knows a step's codes after
decoding them, so it must run the prior step by step with its KV cache; one float that differs
between the two sides moves a frequency-table boundary and the rest of the stream decodes to
garbage. Both sides therefore walk the step grid with the *same* object, the incremental
decoder of :mod:`audiotok.prior.generate` (batch 1, fp32, eval mode, one thread), feeding it
the same columns in the same order; the encoder simply knows them in advance. The same code
also slides the window past ``block_size`` (a prefill of the last 3/4 of the context), so long
files need nothing extra. Per step only the slots that hold a code are coded (a delay
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
from torch import Tensor

from audiotok.prior.entropy import FREQ_BITS, ArithmeticDecoder, ArithmeticEncoder, quantize_pmf
from audiotok.prior.generate import _Decoder
from audiotok.prior.gpt import GPT

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


def _check_prior(prior: GPT) -> None:
    if not isinstance(prior, GPT):
        raise ValueError(f"LM coding needs a causal GPT prior, got {type(prior).__name__}")
    if any(p.dtype != torch.float32 for p in prior.parameters()):
        raise ValueError("LM coding needs a float32 prior (both sides must compute alike)")


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


def _walk(
    prior: GPT, grid: Tensor, present: Tensor, class_label: int | None
) -> Iterator[tuple[int, list[int], np.ndarray, Tensor]]:
    """Visit the steps of ``grid: (1, K, S)`` in order, one table per present slot.

    Yields ``(s, rows, cdf, probs)``: the step, the codebooks it holds, their tables
    ``(len(rows), V + 1)`` and float64 probabilities ``(len(rows), V)``. Before asking for the
    next step the consumer must have written ``grid[0, rows, s]`` (the decoder) or left it as
    it was (the encoder): the next step's logits are computed from it.
    """
    cfg, device = prior.config, prior.offsets.device
    steps = grid.shape[2]
    labels = None if class_label is None else torch.tensor([class_label], device=device)
    decoder = _Decoder(
        prior,
        grid,
        present,
        torch.zeros(1, dtype=torch.long, device=device),
        prior.start_embedding(labels, 1),
        copies=1,
        capacity=min(cfg.block_size, steps),
        keep=max(1, 3 * cfg.block_size // 4 - 1),  # generate()'s sliding window
        use_cache=True,
    )
    logits = decoder.prefill(0, 0)
    for s in range(steps):
        rows = present[:, s].nonzero()[:, 0].tolist()
        probs = logits[0, rows].double().softmax(dim=-1)  # (K', V)
        yield s, rows, quantize_pmf(probs), probs
        if s + 1 < steps:
            logits = decoder.feed(s)


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
    prior: GPT, codes: Tensor | np.ndarray, *, class_label: int | None = None
) -> tuple[bytes, LMCodingStats]:
    """:func:`encode_codes`, also returning what the stream cost against the prior's bits."""
    _check_prior(prior)
    codes = _as_codes(codes, prior)
    if codes.shape[1] == 0:
        return b"", LMCodingStats(0, 0, 0.0, 0.0)
    seq, present = prior.config.pattern.build(codes[None].to(prior.offsets.device))
    symbols = seq[0].cpu()  # (K, S)
    enc = ArithmeticEncoder(FREQ_BITS)
    model_bits = table_bits = 0.0
    with _exact_mode(prior):
        for s, rows, cdf, probs in _walk(prior, seq, present, class_label):
            syms = symbols[rows, s].tolist()
            for i, c in enumerate(syms):
                lo, hi = int(cdf[i, c]), int(cdf[i, c + 1])
                enc.encode(lo, hi)
                table_bits += FREQ_BITS - math.log2(hi - lo)
            model_bits -= float(probs[range(len(rows)), syms].log2().sum())
    data = enc.finish()
    return data, LMCodingStats(len(data), codes.numel(), model_bits, table_bits)


def encode_codes(
    prior: GPT, codes: Tensor | np.ndarray, *, class_label: int | None = None
) -> bytes:
    """Arithmetic-code ``codes: (K, T)`` under ``prior`` (see the module docstring).

    Args:
        prior: a float32 :class:`~audiotok.prior.gpt.GPT` with K codebooks of V codes.
        codes: integer codes in ``0..V-1``, any T (past the context the window slides).
        class_label: the start token's class; None (default) is the unconditional one.

    Returns:
        The bitstream (empty for T = 0); :func:`decode_codes` with the same prior, K, T and
        label restores ``codes`` exactly.

    Raises:
        ValueError: not a float32 GPT, or codes of the wrong shape or range.
    """
    return encode_with_stats(prior, codes, class_label=class_label)[0]


def decode_codes(
    prior: GPT,
    data: bytes,
    num_codebooks: int,
    num_frames: int,
    *,
    class_label: int | None = None,
) -> Tensor:
    """Inverse of :func:`encode_codes`: codes ``(K, T)`` long on the prior's device.

    Any bytes decode to *some* codes (arithmetic decoding cannot fail); check the result
    against a checksum to detect a corrupt stream or another prior.

    Raises:
        ValueError: not a float32 GPT, or ``num_codebooks`` is not the prior's K.
    """
    _check_prior(prior)
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
        for s, rows, cdf, _ in _walk(prior, grid, present, class_label):
            decoded = [dec.decode(cdf[i]) for i in range(len(rows))]
            grid[0, rows, s] = torch.tensor(decoded, dtype=torch.long, device=device)
    return pattern.revert(grid)[0]
