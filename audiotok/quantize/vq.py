"""Vector quantization with a gradient-learned codebook (VQ-VAE, arXiv:1711.00937).

``VectorQuantizer`` maps each vector to its nearest codebook entry and learns the codebook
with the codebook loss ``||sg(z) - q||^2`` plus the commitment loss ``beta ||z - sg(q)||^2``;
the straight-through estimator copies the gradient of ``quantized`` onto ``z``.

Two options from Improved VQGAN (arXiv:2110.04627, section 3.2), also used by DAC
(arXiv:2306.06546): *factorised codes* (``codebook_dim < dim``: the lookup happens after a
linear projection to a low dimension and the result is projected back) and *l2-normalised
codes* (``normalize=True``: both the projected input and the codebook are l2-normalised, so
the lookup is by cosine similarity). ``normalize="lookup"`` is DAC's exact variant
(``dac/nn/quantize.py``): the lookup is by cosine similarity, but the code vectors that are
output, and both losses, use the *raw* codebook and the raw projected input, so each code
keeps the magnitude of the vectors it stands for (a unit-norm code cannot: after a linear
``project_out`` every output lies on one ellipsoid, and a residual stage can only shrink
residuals of the right size). With a projection, the straight-through estimator
acts in the low-dimensional space, so the gradient of ``quantized`` with respect to ``z`` is
``W_out W_in`` rather than the identity.

Optionally a *dead-code restart* (``restart=``, the policies of
:mod:`audiotok.quantize.ema`): an EMA of each code's use is kept, and codes used far less
than the others are moved onto random vectors of the current batch (in the lookup space),
as SoundStream (arXiv:2107.03312, section 3.2) does for EMA codebooks. Without it a gradient
codebook of 1024 codes trained on small batches can end up using a tenth of its codes
(measured on the v2 default's run: usage fell from 24 % to 14 % of the first codebook
between steps 250 and 625). Restarts are chosen on rank 0 from vectors gathered from every
rank and broadcast, so DDP replicas stay identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.quantize import distributed as D
from audiotok.quantize import functional as QF
from audiotok.quantize.base import Quantizer, QuantizerOutput
from audiotok.quantize.ema import DeadCodeRestart, RelativeDeadCodeRestart, restart_vectors

__all__ = ["VectorQuantizer"]


class VectorQuantizer(Quantizer):
    """Nearest-neighbour vector quantizer with a codebook learned by gradient descent.

    Args:
        dim: D, the input and output dimension.
        codebook_size: number of codes K.
        codebook_dim: dimension of the codes; when set and different from ``dim`` the input
            is projected down (and the codes back up) by linear layers.
        normalize: l2-normalise the (projected) input and the codebook before the lookup
            (cosine similarity search; ``quantized`` are unit vectors before projection);
            ``"lookup"``: cosine search, raw code vectors out and in the losses (DAC).
        beta: weight of the commitment loss.
        restart: optional dead-code policy; in training ``metrics["restarted"]`` then
            counts the codes restarted on this step.
        restart_decay: decay of the EMA of code counts the restart policy reads.

    Shapes:
        ``forward(z: (B, ..., D)) -> QuantizerOutput(quantized (B, ..., D), codes (B, ...))``.
        ``loss`` is computed in training mode and zero in eval mode.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        codebook_dim: int | None = None,
        normalize: bool | str = False,
        beta: float = 0.25,
        restart: DeadCodeRestart | RelativeDeadCodeRestart | None = None,
        restart_decay: float = 0.99,
    ) -> None:
        super().__init__()
        if dim < 1 or codebook_size < 1:
            raise ValueError(f"dim and codebook_size must be >= 1, got {dim}, {codebook_size}")
        if normalize not in (False, True, "lookup"):
            raise ValueError(f"normalize must be false, true or 'lookup', got {normalize!r}")
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = dim if codebook_dim is None else codebook_dim
        self.normalize = normalize
        self.beta = beta
        projected = self.codebook_dim != dim
        self.project_in: nn.Module = (
            nn.Linear(dim, self.codebook_dim) if projected else nn.Identity()
        )
        self.project_out: nn.Module = (
            nn.Linear(self.codebook_dim, dim) if projected else nn.Identity()
        )
        self._sqnorm = QF.SquaredNormCache()
        book = torch.empty(codebook_size, self.codebook_dim)
        if normalize == "lookup":
            # raw codes are output and meet the raw projected input in both losses: start
            # them at unit scale (DAC's nn.Embedding init), not at ~1/K, which drags the
            # projection down to their size
            nn.init.normal_(book)
        else:
            book.uniform_(-1.0 / codebook_size, 1.0 / codebook_size)
        self.codebook = nn.Parameter(book)
        self.restart, self.restart_decay = restart, float(restart_decay)
        if restart is not None:
            # set from the first training batch's counts (see _restart_dead)
            self.register_buffer("ema_counts", torch.ones(codebook_size))
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def projected(self) -> bool:
        """True when codes live in a lower-dimensional space than the input."""
        return self.codebook_dim != self.dim

    @property
    def has_output_parameters(self) -> bool:
        """True when ``quantized`` depends on trainable weights beyond the codebook.

        A residual quantizer then adds :meth:`output_path` to keep a reconstruction
        gradient into ``project_out``.
        """
        return self.projected

    def output_path(self, codes: Tensor) -> Tensor:
        """``decode(codes)`` with gradients to ``project_out`` only: ``(B, ...) -> (B, ..., D)``."""
        return self.project_out(F.embedding(codes, self._output_codebook()).detach())

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, "
            f"codebook_dim={self.codebook_dim}, normalize={self.normalize}, beta={self.beta}, "
            f"restart={self.restart}"
        )

    # -- helpers -----------------------------------------------------------------------
    def _codebook(self) -> Tensor:
        """The codebook as used for lookup: ``(K, codebook_dim)``, normalised if asked."""
        return F.normalize(self.codebook, dim=-1) if self.normalize else self.codebook

    def _output_codebook(self) -> Tensor:
        """The code vectors that are output and trained: raw for ``"lookup"``, else as looked up."""
        return self.codebook if self.normalize == "lookup" else self._codebook()

    def _codebook_sqnorm(self) -> Tensor | None:
        """Cached squared norms of the raw codebook; None (computed per call) if normalised."""
        return None if self.normalize else self._sqnorm(self.codebook)

    def _latent(self, z: Tensor) -> Tensor:
        """``(N, D) -> (N, codebook_dim)``: projection and normalisation before the lookup."""
        z = self.project_in(z)
        return F.normalize(z, dim=-1) if self.normalize else z

    @torch.no_grad()
    def _restart_dead(self, latent: Tensor, codes: Tensor) -> int:
        """Update the code-use EMA and move dead codes onto batch vectors; returns how many."""
        assert self.restart is not None
        counts = QF.code_counts(codes, self.codebook_size).float()
        if D.is_distributed():
            counts = D.all_reduce_sum_(counts)
        if int(self.steps) == 0:  # the first batch: unused codes are dead from the start
            self.ema_counts.copy_(counts)
        else:
            QF.ema_update_(self.ema_counts, counts, self.restart_decay)
        self.steps += 1
        if int(self.steps) % self.restart.every:
            return 0
        dead = self.restart.dead(self.ema_counts)  # identical on all ranks
        num_dead = int(dead.sum())
        if num_dead == 0:
            return 0
        vectors = restart_vectors(latent, num_dead)
        if vectors is None:
            return 0
        # through .data: this step's graph holds the codebook, and rows restarted now get
        # (at most a sliver of) gradient computed with their new values, which is harmless
        self.codebook.data[dead] = vectors.to(self.codebook.dtype)
        self.ema_counts[dead] = self.restart.reset_count(self.ema_counts)
        return num_dead

    # -- contract ------------------------------------------------------------------------
    def _forward(self, z: Tensor) -> QuantizerOutput:
        flat = z.reshape(-1, self.dim)
        raw = self.project_in(flat)
        search = F.normalize(raw, dim=-1) if self.normalize else raw
        codebook = self._codebook()
        codes = QF.nearest_code(search.detach(), codebook.detach(), self._codebook_sqnorm())
        # the space codes live in: raw for "lookup" (DAC), else the search space
        latent = raw if self.normalize == "lookup" else search
        code_vectors = F.embedding(codes, self._output_codebook())
        if self.training and flat.shape[0]:
            loss = F.mse_loss(code_vectors, latent.detach()) + self.beta * F.mse_loss(
                latent, code_vectors.detach()
            )
        else:
            loss = z.new_zeros(())
        # straight-through: the value is exactly code_vectors (x - x == 0 in floating point),
        # the gradient goes to latent unchanged and not to the codebook (VQ-VAE's sg(e - z))
        quantized = code_vectors.detach()
        if latent.requires_grad:
            quantized = quantized + (latent - latent.detach())
        metrics = QF.usage_metrics(codes, self.codebook_size)
        if self.restart is not None and self.training:
            restarted = self._restart_dead(latent.detach(), codes)
            metrics["restarted"] = torch.tensor(float(restarted), device=z.device)
        codes = codes.reshape(z.shape[:-1])
        quantized = self.project_out(quantized.reshape(*codes.shape, self.codebook_dim))
        return QuantizerOutput(quantized, codes, loss, metrics)

    def _encode(self, z: Tensor) -> Tensor:
        latent = self._latent(z.reshape(-1, self.dim))
        codes = QF.nearest_code(latent, self._codebook(), self._codebook_sqnorm())
        return codes.reshape(z.shape[:-1])

    def _decode(self, codes: Tensor) -> Tensor:
        return self.project_out(F.embedding(codes, self._output_codebook()))
