"""One LM vocabulary for K codebooks, so any external language model can train on codes.

Flattened codes without offsets make an LM confuse codebooks, and an undocumented order makes
it repeat codes or emit silence (AnyGPT#38, snac#17). :class:`LMVocab` fixes both: codebook k's
code c is the id ``offset + k * V + c``, followed by four special ids, and
:func:`to_lm_tokens` writes the slots of a :class:`~audiotok.prior.patterns.Pattern` step by
step, codebook by codebook within a step::

    ids  offset + [0, V)             codebook 0
         offset + [V, 2V)            codebook 1
         ...
         offset + [(K-1)V, KV)       codebook K-1
         offset + KV                 BOS    start of a sequence
         offset + KV + 1             EOS    end of a sequence
         offset + KV + 2             EMPTY  a layout slot without a code (delay-pattern edges)
         offset + KV + 3             MASK   a masked position (masked / MaskGIT-style LMs)

``offset`` lets the audio ids follow a text LM's own vocabulary (e.g. 32000). A delay-pattern
sequence therefore reads ``BOS, (c0 c1 .. cK-1 of step 0), (step 1), ..., EOS`` with EMPTY in
the first and last K-1 steps; a flatten sequence reads frame by frame with no EMPTY.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from audiotok.prior.patterns import EMPTY_CODE, Pattern

_NUM_SPECIAL = 4


@dataclass(frozen=True)
class LMVocab:
    """The id layout of the module docstring.

    Args:
        num_codebooks: K.
        codebook_size: V.
        offset: the first id (the size of a vocabulary placed before the audio ids).
    """

    num_codebooks: int
    codebook_size: int
    offset: int = 0

    def __post_init__(self) -> None:
        if self.num_codebooks < 1 or self.codebook_size < 1 or self.offset < 0:
            raise ValueError(f"invalid LMVocab {self}")

    @property
    def num_codes(self) -> int:
        """K V, the ids that are codes."""
        return self.num_codebooks * self.codebook_size

    @property
    def codebook_offsets(self) -> tuple[int, ...]:
        """The id of code 0 of each codebook."""
        return tuple(self.offset + k * self.codebook_size for k in range(self.num_codebooks))

    @property
    def bos(self) -> int:
        """Start-of-sequence id."""
        return self.offset + self.num_codes

    @property
    def eos(self) -> int:
        """End-of-sequence id."""
        return self.bos + 1

    @property
    def empty(self) -> int:
        """Id of a layout slot that holds no code."""
        return self.bos + 2

    @property
    def mask(self) -> int:
        """Id of a masked position."""
        return self.bos + 3

    @property
    def size(self) -> int:
        """Ids a model's embedding needs: ``offset + K V + 4``."""
        return self.offset + self.num_codes + _NUM_SPECIAL

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (what ``audiotok info`` shows)."""
        return {
            "size": self.size,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "offset": self.offset,
            "codebook_offsets": list(self.codebook_offsets),
            "bos": self.bos,
            "eos": self.eos,
            "empty": self.empty,
            "mask": self.mask,
            "layout": "id = offset + k * codebook_size + code; specials after the codes",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMVocab:
        """The vocabulary of :meth:`to_dict`; derived fields must agree (ValueError if not)."""
        vocab = cls(int(d["num_codebooks"]), int(d["codebook_size"]), int(d.get("offset", 0)))
        expected = vocab.to_dict()
        wrong = sorted(key for key in d if key not in expected or d[key] != expected[key])
        if wrong:
            raise ValueError(f"LM vocabulary fields unknown or inconsistent: {', '.join(wrong)}")
        return vocab


def _check_pair(pattern: Pattern, vocab: LMVocab) -> None:
    if pattern.num_codebooks != vocab.num_codebooks:
        raise ValueError(
            f"pattern has {pattern.num_codebooks} codebooks, vocab {vocab.num_codebooks}"
        )


def _as_tensor(x: Tensor | np.ndarray, name: str) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must be integer, got {t.dtype}")
    return t.long()


def to_lm_tokens(
    codes: Tensor | np.ndarray,
    pattern: Pattern,
    vocab: LMVocab,
    *,
    bos: bool = True,
    eos: bool = True,
) -> Tensor | np.ndarray:
    """LM ids of ``codes`` laid out by ``pattern``.

    Args:
        codes: ``(B, K, T)`` or ``(K, T)`` (one token file), torch or numpy, integer.
        pattern, vocab: the layout and the ids.
        bos, eos: add BOS first / EOS last.

    Returns:
        ``(B, L)`` or ``(L,)`` int64 ids, numpy if ``codes`` was numpy.

    Raises:
        ValueError: a code outside ``0..V-1`` or a pattern/vocab mismatch.
    """
    _check_pair(pattern, vocab)
    as_numpy = isinstance(codes, np.ndarray)
    codes = _as_tensor(codes, "codes")
    if codes.dim() == 2:
        out = to_lm_tokens(codes[None], pattern, vocab, bos=bos, eos=eos)[0]
        return out.numpy() if as_numpy else out
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= vocab.codebook_size):
        raise ValueError(
            f"codes must be in 0..{vocab.codebook_size - 1}, "
            f"got {int(codes.min())}..{int(codes.max())}"
        )
    seq, mask = pattern.build(codes)  # (B, K, S), (K, S)
    offsets = torch.tensor(vocab.codebook_offsets, device=codes.device)[:, None]
    ids = torch.where(mask, seq + offsets, torch.full_like(seq, vocab.empty))
    slots = pattern.slots(seq.shape[2], codes.device)  # (K, S)
    out = ids.transpose(1, 2)[:, slots.T]  # (B, L): step-major, codebook order within a step
    parts = [out]
    if bos:
        parts.insert(0, out.new_full((out.shape[0], 1), vocab.bos))
    if eos:
        parts.append(out.new_full((out.shape[0], 1), vocab.eos))
    out = torch.cat(parts, dim=1)
    return out.numpy() if as_numpy else out


def _strip(tokens: Tensor, position: int, token_id: int, name: str) -> Tensor:
    if tokens.shape[1] == 0:
        return tokens
    hit = tokens[:, position] == token_id
    if bool(hit.all()):
        return tokens[:, 1:] if position == 0 else tokens[:, :-1]
    if bool(hit.any()):
        raise ValueError(f"{name} present in some rows and not in others")
    return tokens


def from_lm_tokens(
    tokens: Tensor | np.ndarray, pattern: Pattern, vocab: LMVocab
) -> Tensor | np.ndarray:
    """Codes ``(B, K, T)`` of LM ids ``tokens: (B, L)`` (or ``(L,)`` -> ``(K, T)``).

    A leading BOS and a trailing EOS are optional. Every other id must be a code of the
    codebook its slot belongs to, or EMPTY exactly where the pattern has no code. Numpy in,
    numpy (int64) out.

    Raises:
        ValueError: naming the first wrong id, its position and what was expected there.
    """
    _check_pair(pattern, vocab)
    if isinstance(tokens, np.ndarray):
        return from_lm_tokens(_as_tensor(tokens, "LM tokens"), pattern, vocab).numpy()
    tokens = _as_tensor(tokens, "LM tokens")
    single = tokens.dim() == 1
    if single:
        tokens = tokens[None]
    if tokens.dim() != 2:
        raise ValueError(f"LM tokens must be (B, L) or (L,), got {tuple(tokens.shape)}")
    tokens = _strip(_strip(tokens, 0, vocab.bos, "BOS"), -1, vocab.eos, "EOS")
    b, length = tokens.shape
    k = vocab.num_codebooks
    extra = int(pattern.slots(pattern.num_steps(1)).sum()) - k  # EMPTY slots, any T >= 1
    frames, rest = divmod(length - extra, k)
    if length and (rest or frames < 1):
        raise ValueError(f"{length} LM tokens do not make whole frames for this pattern")
    frames = frames if length else 0
    num_steps = pattern.num_steps(frames)
    slots = pattern.slots(num_steps, tokens.device)  # (K, S)
    real = pattern.mask(frames, tokens.device)
    ids = tokens.new_full((b, num_steps, k), vocab.empty)
    ids[:, slots.T] = tokens
    ids = ids.transpose(1, 2)  # (B, K, S)
    codes = ids - torch.tensor(vocab.codebook_offsets, device=tokens.device)[:, None]
    ok = torch.where(real, (codes >= 0) & (codes < vocab.codebook_size), ids == vocab.empty)
    if not bool(ok.all()):
        bi, ki, si = (int(i) for i in (~ok).nonzero()[0])
        index = int(slots.T[:si].sum()) + int(slots[:ki, si].sum())
        lo = vocab.codebook_offsets[ki]
        want = f"{lo}..{lo + vocab.codebook_size - 1}" if real[ki, si] else f"EMPTY {vocab.empty}"
        raise ValueError(
            f"LM token {int(ids[bi, ki, si])} at row {bi}, position {index} (BOS not counted) is out "
            f"of range for codebook {ki}: expected {want}"
        )
    codes = pattern.revert(torch.where(real, codes, EMPTY_CODE))
    return codes[0] if single else codes
