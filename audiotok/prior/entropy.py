"""Exact integer arithmetic coding over frequency tables: probabilities -> bits -> symbols.

The coder is the classic finite-precision arithmetic coder of Witten, Neal and Cleary
("Arithmetic coding for data compression", CACM 30(6), 1987): the interval ``[low, high]`` of
:data:`STATE_BITS`-bit integers narrows to each symbol's share of it, settled leading bits are
written as soon as ``low`` and ``high`` agree on them, and the underflow case (an interval
straddling the middle, ``low >= 1/4`` and ``high < 3/4``) is resolved by counting
*pending* bits that are written, inverted, after the next settled bit. It is the same
technique as EnCodec's ``encodec/quantization/ac.py`` (Defossez et al., arXiv:2210.13438,
section 3.3), learned from and not copied; here the state is Python integers (no overflow),
so the only approximations are the ones made on purpose, and both are made identically by
encoder and decoder:

* **Probabilities -> integer frequencies** (:func:`quantize_pmf`): in float64, every symbol
  gets ``1 + floor(p (F - V))`` for a fixed total ``F = 2**FREQ_BITS``, and the rounding
  remainder goes to the most probable symbol (first on ties), so the table sums to exactly
  ``F``, no symbol is impossible, and the same probabilities give the same table everywhere.
  With ``F = 2**24`` the cost over ``-log2 p`` is below ``V / F`` nats per symbol
  (6e-5 for V = 1024).
* **Termination**: two bits (plus pending) choose a value inside the final interval; the
  decoder reads zeros past the end of the data, so no length field is needed for the bits.

The decoder keeps ``low <= value <= high`` for any input bits, so corrupt data decodes to
some symbols without failing: callers detect corruption with a checksum (lmcodes.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "STATE_BITS",
    "FREQ_BITS",
    "quantize_pmf",
    "ArithmeticEncoder",
    "ArithmeticDecoder",
    "encode_symbols",
    "decode_symbols",
]

#: bits of the coder's ``low`` / ``high`` state
STATE_BITS = 32
#: frequency tables sum to ``2**FREQ_BITS``; must be ``<= STATE_BITS - 2`` so that every
#: symbol with frequency 1 keeps a non-empty interval (the range never drops below 1/4)
FREQ_BITS = 24

_TOP = (1 << STATE_BITS) - 1
_HALF = 1 << (STATE_BITS - 1)
_QUARTER = 1 << (STATE_BITS - 2)


def quantize_pmf(probs: Tensor, freq_bits: int = FREQ_BITS) -> np.ndarray:
    """Cumulative integer frequencies of probabilities (see the module docstring).

    Args:
        probs: ``(..., V)`` non-negative probabilities (any float dtype; renormalised in
            float64, so softmax output is fine as it is).
        freq_bits: the table total is ``2**freq_bits`` (at most ``STATE_BITS - 2``).

    Returns:
        ``cdf: (..., V + 1)`` int64 numpy, ``cdf[..., 0] = 0``, ``cdf[..., -1] = 2**freq_bits``,
        strictly increasing (symbol ``i`` owns ``[cdf[i], cdf[i + 1])``).

    Raises:
        ValueError: ``V`` too large for the total, or probabilities that are negative, NaN
            or sum to zero.
    """
    total = 1 << freq_bits
    v = probs.shape[-1]
    if not 1 <= freq_bits <= STATE_BITS - 2 or not 1 <= v <= total // 2:
        raise ValueError(f"{v} symbols do not fit a frequency total of 2**{freq_bits}")
    p = probs.detach().to(device="cpu", dtype=torch.float64)
    norm = p.sum(dim=-1, keepdim=True)
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((norm <= 0).any()):
        raise ValueError("probabilities must be finite, non-negative and sum above zero")
    freq = (p / norm * (total - v)).floor().long() + 1  # every symbol >= 1
    top = freq.argmax(dim=-1, keepdim=True)  # first maximum: deterministic
    freq.scatter_add_(-1, top, total - freq.sum(dim=-1, keepdim=True))
    cdf = torch.nn.functional.pad(freq.cumsum(dim=-1), (1, 0))
    return cdf.numpy()


class ArithmeticEncoder:
    """Symbols in, bytes out: ``encode`` each symbol's interval, then ``finish``.

    The frequency total ``2**freq_bits`` is fixed per coder, so a symbol is just its
    ``[cum_low, cum_high)`` slice of a table from :func:`quantize_pmf`.
    """

    def __init__(self, freq_bits: int = FREQ_BITS) -> None:
        if not 1 <= freq_bits <= STATE_BITS - 2:
            raise ValueError(f"freq_bits must be in 1..{STATE_BITS - 2}")
        self.freq_bits = freq_bits
        self._low, self._high, self._pending = 0, _TOP, 0
        self._bits: list[int] = []
        self._done = False

    def _emit(self, bit: int) -> None:
        self._bits.append(bit)
        if self._pending:
            self._bits.extend([1 - bit] * self._pending)
            self._pending = 0

    def encode(self, cum_low: int, cum_high: int) -> None:
        """Code the symbol owning ``[cum_low, cum_high)`` of the ``2**freq_bits`` total."""
        if self._done:
            raise RuntimeError("the encoder is finished")
        if not 0 <= cum_low < cum_high <= 1 << self.freq_bits:
            raise ValueError(f"bad symbol interval [{cum_low}, {cum_high})")
        low, high, shift = self._low, self._high, self.freq_bits
        span = high - low + 1
        high = low + ((span * cum_high) >> shift) - 1
        low = low + ((span * cum_low) >> shift)
        while True:
            if high < _HALF:
                self._emit(0)
            elif low >= _HALF:
                self._emit(1)
                low -= _HALF
                high -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                self._pending += 1  # underflow: the next settled bit decides this one
                low -= _QUARTER
                high -= _QUARTER
            else:
                break
            low = low << 1
            high = (high << 1) | 1
        self._low, self._high = low, high

    def finish(self) -> bytes:
        """Settle the last interval and return all bytes (zero-padded to a whole byte)."""
        if not self._done:
            self._done = True
            self._pending += 1
            self._emit(0 if self._low < _QUARTER else 1)
        return np.packbits(np.array(self._bits, dtype=np.uint8)).tobytes()

    @property
    def num_bits(self) -> int:
        """Bits written so far (pending bits not counted)."""
        return len(self._bits)


class ArithmeticDecoder:
    """Bytes in, symbols out: ``decode(cdf)`` with the tables the encoder used, in order."""

    def __init__(self, data: bytes, freq_bits: int = FREQ_BITS) -> None:
        if not 1 <= freq_bits <= STATE_BITS - 2:
            raise ValueError(f"freq_bits must be in 1..{STATE_BITS - 2}")
        self.freq_bits = freq_bits
        self._bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
        self._pos = 0
        self._low, self._high = 0, _TOP
        value = 0
        for _ in range(STATE_BITS):
            value = (value << 1) | self._next_bit()
        self._value = value

    def _next_bit(self) -> int:
        pos = self._pos
        self._pos = pos + 1
        return self._bits[pos] if pos < len(self._bits) else 0  # zeros past the end

    def decode(self, cdf: np.ndarray) -> int:
        """The next symbol under the table ``cdf: (V + 1,)`` of :func:`quantize_pmf`."""
        low, high, value, shift = self._low, self._high, self._value, self.freq_bits
        span = high - low + 1
        # the largest count c with low + floor(span c / F) <= value
        target = (((value - low + 1) << shift) - 1) // span
        symbol = int(np.searchsorted(cdf, target, side="right")) - 1
        symbol = min(max(symbol, 0), len(cdf) - 2)
        high = low + ((span * int(cdf[symbol + 1])) >> shift) - 1
        low = low + ((span * int(cdf[symbol])) >> shift)
        while True:
            if high < _HALF:
                pass
            elif low >= _HALF:
                low -= _HALF
                high -= _HALF
                value -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                low -= _QUARTER
                high -= _QUARTER
                value -= _QUARTER
            else:
                break
            low = low << 1
            high = (high << 1) | 1
            value = (value << 1) | self._next_bit()
        self._low, self._high, self._value = low, high, value
        return symbol


def encode_symbols(cdfs: np.ndarray, symbols: np.ndarray, freq_bits: int = FREQ_BITS) -> bytes:
    """Code ``symbols: (N,)`` with one table per symbol, ``cdfs: (N, V + 1)``."""
    enc = ArithmeticEncoder(freq_bits)
    for cdf, s in zip(cdfs, np.asarray(symbols).tolist(), strict=True):
        enc.encode(int(cdf[s]), int(cdf[s + 1]))
    return enc.finish()


def decode_symbols(data: bytes, cdfs: np.ndarray, freq_bits: int = FREQ_BITS) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: ``(N,)`` int64 symbols for the same ``cdfs``."""
    dec = ArithmeticDecoder(data, freq_bits)
    return np.array([dec.decode(cdf) for cdf in cdfs], dtype=np.int64)
