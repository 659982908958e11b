"""The quantizer contract shared by every quantizer in :mod:`audiotok.quantize`.

Every quantizer takes a channel-last tensor ``z: (B, ..., D)`` with any number of middle
dimensions and returns the same :class:`QuantizerOutput`. It also exposes ``encode`` (vectors
to integer codes) and ``decode`` (codes to vectors) so that token pipelines never need the
training-time ``forward``. Invariant: in eval mode ``decode(encode(z))`` equals
``forward(z).quantized``.

Quantization always runs in fp32, also under autocast: bf16 distances pick the wrong
neighbours and are known to halve FSQ code usage (arXiv:2309.15505, section 4).

Anchors: audiocraft ``quantization/base.py`` (QuantizedResult, DummyQuantizer).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["QuantizerOutput", "Quantizer", "IdentityQuantizer"]


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
        """Raise ``ValueError`` unless ``codes`` are integer indices in range.

        Args:
            codes: ``(B, ...)`` or ``(B, ..., k)`` integer tensor.
            num_codebooks: for multi-codebook quantizers, the largest allowed ``k``.
        """
        if not isinstance(codes, Tensor):
            raise ValueError(f"expected codes as a torch.Tensor, got {type(codes).__name__}")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ValueError(f"expected integer codes, got dtype {codes.dtype}")
        if codes.dim() < 1:
            raise ValueError(f"expected codes of shape (B, ...), got {tuple(codes.shape)}")
        if self.codes_have_codebook_dim:
            k_max = self.num_codebooks if num_codebooks is None else num_codebooks
            if codes.dim() < 2 or not 1 <= codes.shape[-1] <= k_max:
                raise ValueError(
                    f"expected codes (B, ..., k) with 1 <= k <= {k_max}, got {tuple(codes.shape)}"
                )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"codes out of range: expected 0 <= code < {self.codebook_size}, "
                f"got min {int(codes.min())} and max {int(codes.max())}"
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
        k = num_codebooks
        if (
            isinstance(k, bool)
            or not isinstance(k, numbers.Integral)
            or not 1 <= k <= self.num_codebooks
        ):
            raise ValueError(
                f"num_codebooks must be an int in [1, {self.num_codebooks}], got {k!r}"
            )
        k = int(k)
        if k != self.num_codebooks and not self.supports_partial_codebooks:
            raise ValueError(
                f"this {type(self).__name__} needs all {self.num_codebooks} codebooks, "
                f"got num_codebooks={k}"
            )
        return k

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
