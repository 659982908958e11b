"""The quantizer contract shared by every quantizer in :mod:`audiotok.quantize`.

Every quantizer takes a channel-last tensor ``z: (B, ..., D)`` with any number of middle
dimensions and returns the same :class:`QuantizerOutput`. It also exposes ``encode`` (vectors
to integer codes) and ``decode`` (codes to vectors) so that token pipelines never need the
training-time ``forward``. Invariant: in eval mode ``decode(encode(z))`` equals
``forward(z).quantized``.

Quantization always runs in fp32, also under autocast: bf16 distances pick the wrong
neighbours and are known to halve FSQ code usage (arXiv:2309.15505, section 4).

This module also holds the one validator of integer codes (:func:`check_codes`) and of a
codebook count (:func:`check_num_codebooks`): quantizers, the audio and image families and
token files all call them, so a message about codes reads the same everywhere. quantize/ is
the leaf every family imports, hence their home.

Anchors: audiocraft ``quantization/base.py`` (QuantizedResult, DummyQuantizer).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "QuantizerOutput",
    "Quantizer",
    "IdentityQuantizer",
    "check_codes",
    "check_num_codebooks",
]


def check_num_codebooks(num_codebooks: Any, *, total: int, partial: bool, owner: str) -> int:
    """The one check of a codebook count ``k``: an int in ``[1, total]``, and ``total``
    itself unless ``partial`` (the first k codebooks are a valid lower bitrate).

    Args:
        num_codebooks: the count to check (a bool is not a count).
        total: K, the codebooks the owner has.
        partial: whether fewer than K codebooks may be used.
        owner: what has the codebooks, for the message (a class name, ``"model"``).

    Returns:
        ``num_codebooks`` as an int.

    Raises:
        ValueError: ``num_codebooks must be an int in [1, K], got k`` (with ``(this <owner>
            has only K)`` when k > K), or ``this <owner> needs all K codebooks, got
            num_codebooks=k``.
    """
    k = num_codebooks
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= total:
        only = f" (this {owner} has only {total})" if isinstance(k, numbers.Integral) else ""
        raise ValueError(f"num_codebooks must be an int in [1, {total}], got {k!r}{only}")
    if k != total and not partial:
        raise ValueError(f"this {owner} needs all {total} codebooks, got num_codebooks={k}")
    return int(k)


def _is_integer_dtype(dtype: Any) -> bool:
    if isinstance(dtype, torch.dtype):
        return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
    return getattr(dtype, "kind", "") in ("u", "i")  # a NumPy dtype


def check_codes(
    codes: Any,
    *,
    layout: Sequence[str],
    codebook_size: int | None,
    num_codebooks: Callable[[int], object] | None = None,
    types: tuple[type, ...] = (Tensor,),
) -> None:
    """The one validator of integer codes, for tensors and NumPy arrays alike.

    Args:
        codes: the codes to check.
        layout: axis names, e.g. ``("B", "k", "T'")``. ``"..."`` stands for any number of
            axes (also none), ``"B"`` is the batch (may be 0), ``"k"`` or ``"K"`` the
            codebook axis; every other named axis needs at least one entry.
        codebook_size: codes lie in ``[0, codebook_size)``; None checks only ``>= 0``.
        num_codebooks: called with the size of the codebook axis to check it, e.g. a
            quantizer's :meth:`Quantizer.check_num_codebooks` or a ``functools.partial`` of
            :func:`check_num_codebooks`; it raises ``ValueError``.
        types: the accepted array types (``(numpy.ndarray,)`` for token files).

    Raises:
        ValueError: the first of, in this order: ``expected codes as a torch.Tensor, got
            list``; ``expected integer codes, got dtype float32``; ``expected codes of shape
            (B, k, T'), got shape (3, 4)``; ``codes are empty: expected shape (B, k, T') with
            k, T' >= 1, got shape (1, 3, 0)``; what ``num_codebooks`` raises; ``codes out of
            range: expected 0 <= code < 16, got min -1 (negative) and max 16``.
    """
    if not isinstance(codes, types):
        names = " or ".join(f"{t.__module__}.{t.__qualname__}" for t in types)
        raise ValueError(f"expected codes as a {names}, got {type(codes).__name__}")
    if not _is_integer_dtype(codes.dtype):
        dtype = str(codes.dtype).removeprefix("torch.")  # the same words for NumPy
        raise ValueError(f"expected integer codes, got dtype {dtype}")
    shape, want = tuple(int(n) for n in codes.shape), f"({', '.join(layout)})"
    fixed = [a for a in layout if a != "..."]
    if len(shape) < len(fixed) or ("..." not in layout and len(shape) != len(fixed)):
        raise ValueError(f"expected codes of shape {want}, got shape {shape}")
    # each named axis, aligned from the front up to "..." and from the back after it
    cut = layout.index("...") if "..." in layout else len(layout)
    named = list(zip(layout[:cut], shape, strict=False))
    named += list(
        zip(layout[cut + 1 :], shape[len(shape) - (len(layout) - cut - 1) :], strict=True)
    )
    nonempty = [a for a, _ in named if a != "B"]
    if any(n < 1 for a, n in named if a != "B"):
        raise ValueError(
            f"codes are empty: expected shape {want} with {', '.join(nonempty)} >= 1, "
            f"got shape {shape}"
        )
    k = next((n for a, n in named if a in ("k", "K")), None)
    if num_codebooks is not None and k is not None:
        num_codebooks(k)
    if math.prod(shape):
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or (codebook_size is not None and high >= codebook_size):
            bound = "" if codebook_size is None else f" < {codebook_size}"
            sign = " (negative)" if low < 0 else ""
            raise ValueError(
                f"codes out of range: expected 0 <= code{bound}, got min {low}{sign} and max {high}"
            )


@dataclass
class QuantizerOutput:
    """What every quantizer's ``forward`` returns.

    Attributes:
        quantized: ``(B, ..., D)`` float, the quantized vectors with the straight-through
            estimator applied (its gradient with respect to ``z`` is the identity).
        codes: ``(B, ...)`` long for one codebook, ``(B, ..., K)`` for K codebooks.
        loss: scalar float, the auxiliary loss to add to the training objective (codebook and
            commitment terms; zero where the quantizer has none).
        metrics: scalar or small tensors for logging: ``perplexity``, ``usage`` (fraction of
            codes used in the batch) and ``counts`` (per-code counts, ``(codebook_size,)`` or
            ``(K, codebook_size)``), all detached.
    """

    quantized: Tensor
    codes: Tensor
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Quantizer(nn.Module):
    """Base class: input checks, fp32 execution and the encode/decode contract.

    Subclasses set ``dim``, ``codebook_size`` and ``num_codebooks`` and implement
    ``_forward``, ``_encode`` and ``_decode`` on fp32 tensors flattened or not as they like.
    The public methods validate inputs (a ``ValueError`` naming what was expected) and run
    the subclass with autocast disabled.
    """

    dim: int
    codebook_size: int
    num_codebooks: int = 1

    @property
    def codes_have_codebook_dim(self) -> bool:
        """True when codes carry a trailing K axis, ``(B, ..., K)``."""
        return False

    @property
    def supports_partial_codebooks(self) -> bool:
        """True when ``forward``/``encode`` take ``num_codebooks=k < K`` (a lower bitrate) and
        ``decode`` accepts the first k codebooks: residual stacks. Single-codebook quantizers
        answer True too, since their only prefix is the whole. Families ask this instead of
        probing signatures."""
        return self.num_codebooks == 1

    @property
    def has_output_parameters(self) -> bool:
        """True when ``quantized`` passes through trainable weights (an output projection);
        then :meth:`output_path` gives ``decode(codes)`` differentiably in those weights."""
        return False

    def output_path(self, codes: Tensor) -> Tensor:
        """``decode(codes)`` with a graph to the output weights, ``(B, ...) -> (B, ..., D)``.

        Residual stacks use it to train a projected stage's output layer (DAC's layout);
        only meaningful where :attr:`has_output_parameters` is True.
        """
        return self._decode(codes)

    # -- validation ------------------------------------------------------------------
    def check_input(self, z: Tensor) -> None:
        """Raise ``ValueError`` unless ``z`` is a finite float tensor ``(B, ..., dim)``."""
        if not isinstance(z, Tensor):
            raise ValueError(
                f"expected a torch.Tensor (B, ..., {self.dim}), got {type(z).__name__}"
            )
        if not z.is_floating_point():
            raise ValueError(f"expected a floating point tensor, got dtype {z.dtype}")
        if z.dim() < 2:
            raise ValueError(f"expected shape (B, ..., {self.dim}), got {tuple(z.shape)}")
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"expected last dimension {self.dim} (channel-last (B, ..., D)), "
                f"got shape {tuple(z.shape)}"
            )
        # one vectorised reduction: a NaN/inf anywhere makes the sum non-finite; only then (or
        # on overflow of a huge but finite input) run the exact elementwise check
        if not torch.isfinite(z.sum()) and not torch.isfinite(z).all():
            raise ValueError("input contains NaN or inf values")

    def check_codes(self, codes: Tensor, num_codebooks: int | None = None) -> None:
        """Raise ``ValueError`` unless ``codes`` are integer indices in range
        (:func:`check_codes`).

        Args:
            codes: ``(B, ...)`` or ``(B, ..., k)`` integer tensor.
            num_codebooks: for multi-codebook quantizers, the largest allowed ``k``
                (default K); any prefix ``1 <= k`` is accepted here, subclasses narrow it.
        """
        multi = self.codes_have_codebook_dim
        count = functools.partial(
            check_num_codebooks,
            total=self.num_codebooks if num_codebooks is None else num_codebooks,
            partial=True,
            owner=type(self).__name__,
        )
        check_codes(
            codes,
            layout=("B", "...", "k") if multi else ("B", "..."),
            codebook_size=self.codebook_size,
            num_codebooks=count,
        )

    # -- public API ------------------------------------------------------------------
    def check_num_codebooks(self, num_codebooks: int | None) -> int:
        """``num_codebooks`` checked against :attr:`supports_partial_codebooks` (None: all K).

        Raises:
            ValueError: not an int in ``[1, K]``, or fewer than K where prefixes are not
                supported.
        """
        if num_codebooks is None:
            return self.num_codebooks
        return check_num_codebooks(
            num_codebooks,
            total=self.num_codebooks,
            partial=self.supports_partial_codebooks,
            owner=type(self).__name__,
        )

    def forward(self, z: Tensor, num_codebooks: int | None = None) -> QuantizerOutput:
        """Quantize ``z: (B, ..., D)``; see :class:`QuantizerOutput`.

        ``num_codebooks`` keeps the first k codebooks where
        :attr:`supports_partial_codebooks` (None: all).
        """
        self.check_input(z)
        self.check_num_codebooks(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            out = self._forward(z.float())
        out.quantized = out.quantized.to(z.dtype)
        return out

    @torch.no_grad()
    def encode(self, z: Tensor, num_codebooks: int | None = None) -> Tensor:
        """Vectors ``(B, ..., D)`` to codes ``(B, ...)`` or ``(B, ..., k)`` (long)."""
        self.check_input(z)
        self.check_num_codebooks(num_codebooks)
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._encode(z.float())

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, ...)`` or ``(B, ..., k)`` to vectors ``(B, ..., D)`` float32."""
        self.check_codes(codes)
        with torch.autocast(device_type=codes.device.type, enabled=False):
            return self._decode(codes.long())

    # -- to implement ----------------------------------------------------------------
    def _forward(self, z: Tensor) -> QuantizerOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, codes: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class IdentityQuantizer(Quantizer):
    """Pass-through quantizer for testing model plumbing.

    ``quantized`` is ``z`` itself, ``codes`` are all zeros ``(B, ...)`` and ``loss`` is zero.
    ``decode`` cannot invert codes, so it returns zeros; the eval invariant does not hold
    and tests skip it for this class.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.codebook_size = 1

    def _forward(self, z: Tensor) -> QuantizerOutput:
        codes = torch.zeros(z.shape[:-1], dtype=torch.long, device=z.device)
        zero = z.new_zeros(())
        return QuantizerOutput(
            z, codes, zero, {"perplexity": z.new_ones(()), "usage": z.new_ones(())}
        )

    def _encode(self, z: Tensor) -> Tensor:
        return torch.zeros(z.shape[:-1], dtype=torch.long, device=z.device)

    def _decode(self, codes: Tensor) -> Tensor:
        return torch.zeros(*codes.shape, self.dim, device=codes.device)
