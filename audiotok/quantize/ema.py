"""Vector quantization with an exponential-moving-average codebook (arXiv:1711.00937, app. A.1).

The codebook is not trained by gradients: each training step counts how many vectors chose
each code and sums them, keeps exponential moving averages of both (with Laplace smoothing of
the counts), and sets every code to its average vector. Only the commitment loss
``beta ||z - sg(q)||^2`` reaches the encoder.

Two strategies make it robust, each a small object composed into the quantizer rather than
a flag (SoundStream arXiv:2107.03312, EnCodec arXiv:2210.13438, moshi):

- :class:`KMeansInit` initialises the codebook with k-means on the first training batch.
- :class:`DeadCodeRestart` replaces codes whose EMA count fell below a threshold with random
  recent encoder outputs and resets their EMA count and sum, so the stale average does not
  overwrite the new code on the next update (the EnCodec implementation only reset the code).

Under an initialised ``torch.distributed`` group, counts and sums are all-reduced every step,
and k-means and restarts are computed on rank 0 from data gathered from all ranks and
broadcast, so the codebooks stay identical on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from audiotok.quantize import distributed as D
from audiotok.quantize import functional as QF
from audiotok.quantize.base import Quantizer, QuantizerOutput

__all__ = ["EMAVectorQuantizer", "KMeansInit", "DeadCodeRestart", "RelativeDeadCodeRestart"]


@dataclass(frozen=True)
class KMeansInit:
    """Data-dependent codebook initialisation: k-means on the first training batch.

    Args:
        iters: Lloyd iterations.
        max_samples: at most this many vectors (over all ranks) are clustered.
        plusplus: k-means++ seeding (else random distinct samples).
    """

    iters: int = 10
    max_samples: int = 65536
    plusplus: bool = True

    def __call__(self, x: Tensor, codebook_size: int) -> tuple[Tensor, Tensor]:
        """``x: (N, D)`` -> ``centroids (K, D)``, ``counts (K,)`` float."""
        if x.shape[0] > self.max_samples:
            x = QF.sample_rows(x, self.max_samples)
        return QF.kmeans(x, codebook_size, self.iters, plusplus=self.plusplus)


@dataclass(frozen=True)
class DeadCodeRestart:
    """Replace rarely used codes with random recent encoder outputs.

    Args:
        threshold: a code is dead when its EMA count (vectors per step) is below this.
        every: check every this many training steps.
    """

    threshold: float = 2.0
    every: int = 1

    def dead(self, ema_counts: Tensor) -> Tensor:
        """``(K,)`` bool mask of the codes to restart."""
        return ema_counts < self.threshold

    def reset_count(self, ema_counts: Tensor) -> float:
        """EMA count given to a restarted code: the mean count, at least the threshold.

        A restarted code thus survives a few hundred steps of disuse at decay 0.99 instead
        of being restarted again on the very next check.
        """
        return max(self.threshold, float(ema_counts.mean()))


@dataclass(frozen=True)
class RelativeDeadCodeRestart:
    """Dead-code restart with a threshold relative to the mean EMA count.

    :class:`DeadCodeRestart` counts vectors per step, so its useful value moves with the batch
    size, the frame rate and the codebook size (0.05 suits 600 vectors per step over 1024
    codes; 2.0 there would restart every code on every step). Here a code is dead when its
    EMA count is below ``fraction`` times the mean count, which stays meaningful when any of
    those change.

    Args:
        fraction: a code is dead below this fraction of the mean EMA count.
        every: check every this many training steps.
    """

    fraction: float = 0.05
    every: int = 1

    def dead(self, ema_counts: Tensor) -> Tensor:
        """``(K,)`` bool mask: codes used less than ``fraction`` of the average code."""
        return ema_counts < self.fraction * ema_counts.mean()

    def reset_count(self, ema_counts: Tensor) -> float:
        """A restarted code starts at the mean count (it survives a few hundred idle steps)."""
        return float(ema_counts.mean())


@torch.no_grad()
def restart_vectors(flat: Tensor, num: int) -> Tensor | None:
    """``num`` random rows of ``flat: (N, D)`` gathered from every rank, chosen on rank 0 and
    broadcast (so DDP replicas restart the same codes with the same vectors); None when no
    rank has a row."""
    local = QF.sample_rows(flat, num) if flat.shape[0] else flat
    pool = D.gather_rows(local.contiguous())
    if pool.shape[0] == 0:
        return None
    vectors = QF.sample_rows(pool, num) if D.rank() == 0 else pool.new_empty(num, flat.shape[1])
    D.broadcast_(vectors)
    return vectors


class EMAVectorQuantizer(Quantizer):
    """Nearest-neighbour quantizer whose codebook follows EMAs of its assigned vectors.

    Args:
        dim: D, the vector dimension.
        codebook_size: number of codes K.
        decay: EMA decay (0.99 in SoundStream/EnCodec).
        epsilon: Laplace smoothing of the EMA counts.
        beta: weight of the commitment loss.
        init: optional data-dependent initialisation (e.g. :class:`KMeansInit`); without it
            the codebook starts from a standard normal draw.
        restart: optional dead-code policy (:class:`DeadCodeRestart` or
            :class:`RelativeDeadCodeRestart`).

    Shapes:
        ``forward(z: (B, ..., D)) -> QuantizerOutput(quantized (B, ..., D), codes (B, ...))``.
        ``loss`` (commitment) is computed in training mode and zero in eval mode; in
        training, ``metrics["restarted"]`` counts the codes restarted on this step.
    """

    codebook: Tensor
    ema_counts: Tensor
    ema_sums: Tensor
    initialized: Tensor
    steps: Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        beta: float = 0.25,
        init: KMeansInit | None = None,
        restart: DeadCodeRestart | RelativeDeadCodeRestart | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or codebook_size < 1:
            raise ValueError(f"dim and codebook_size must be >= 1, got {dim}, {codebook_size}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.dim = dim
        self.codebook_size = codebook_size
        self.decay = decay
        self.epsilon = epsilon
        self.beta = beta
        self.init = init
        self.restart = restart
        codebook = torch.randn(codebook_size, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_counts", torch.ones(codebook_size))
        self.register_buffer("ema_sums", codebook.clone())
        self.register_buffer("initialized", torch.tensor(init is None))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._sqnorm = QF.SquaredNormCache()

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, decay={self.decay}, "
            f"beta={self.beta}, init={self.init}, restart={self.restart}"
        )

    # -- codebook learning ---------------------------------------------------------------
    @torch.no_grad()
    def _initialize(self, flat: Tensor) -> None:
        """k-means on the (gathered) first batch, computed on rank 0 and broadcast."""
        assert self.init is not None
        local = flat
        share = max(1, self.init.max_samples // D.world_size())
        if local.shape[0] > share:
            local = QF.sample_rows(local, share)
        data = D.gather_rows(local.contiguous())
        if data.shape[0] == 0:
            return  # same on every rank: nobody has data yet
        if D.rank() == 0:
            centroids, counts = self.init(data, self.codebook_size)
        else:
            centroids = torch.empty_like(self.codebook)
            counts = torch.empty_like(self.ema_counts)
        D.broadcast_(centroids)
        D.broadcast_(counts)
        # a centroid that won no sample still gets a unit count: with a zero count its EMA
        # sum would be zero too and the next update would move the code to the origin
        counts = counts.clamp_min(1.0)
        self.codebook.copy_(centroids)
        self.ema_counts.copy_(counts)
        self.ema_sums.copy_(centroids * counts[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: Tensor, codes: Tensor, counts: Tensor) -> int:
        """One EMA step from this batch's (all-reduced) counts and sums, then restarts.

        Returns:
            The number of codes restarted.
        """
        sums = QF.code_sums(flat, codes, self.codebook_size)
        if D.is_distributed():
            stats = D.all_reduce_sum_(torch.cat([counts[:, None], sums], 1))  # one collective
            counts, sums = stats[:, 0], stats[:, 1:]
        QF.ema_update_(self.ema_counts, counts, self.decay)
        QF.ema_update_(self.ema_sums, sums, self.decay)
        smoothed = QF.laplace_smoothing(self.ema_counts, self.epsilon).clamp_min_(self.epsilon)
        torch.div(self.ema_sums, smoothed[:, None], out=self.codebook)
        self.steps += 1
        if self.restart is not None and int(self.steps) % self.restart.every == 0:
            return self._restart(flat)
        return 0

    @torch.no_grad()
    def _restart(self, flat: Tensor) -> int:
        """Restart dead codes from random gathered vectors chosen on rank 0; returns how many."""
        assert self.restart is not None
        dead = self.restart.dead(self.ema_counts)  # identical on all ranks
        num_dead = int(dead.sum())
        if num_dead == 0:
            return 0
        vectors = restart_vectors(flat, num_dead)
        if vectors is None:
            return 0
        count = self.restart.reset_count(self.ema_counts)
        self.codebook[dead] = vectors
        self.ema_counts[dead] = count
        self.ema_sums[dead] = vectors * count
        return num_dead

    # -- contract ------------------------------------------------------------------------
    def _forward(self, z: Tensor) -> QuantizerOutput:
        flat = z.reshape(-1, self.dim)
        if self.training and self.init is not None and not bool(self.initialized):
            self._initialize(flat.detach())
        codebook = self.codebook  # embedding() copies rows, so the update below is safe
        codes = QF.nearest_code(flat.detach(), codebook, self._sqnorm(codebook))
        code_vectors = F.embedding(codes, codebook)
        counts = QF.code_counts(codes, self.codebook_size)
        restarted = self._update(flat.detach(), codes, counts) if self.training else 0
        if self.training and flat.shape[0]:
            loss = self.beta * F.mse_loss(flat, code_vectors)
        else:
            loss = z.new_zeros(())
        # straight-through; exactly code_vectors in value, identity gradient to z
        quantized = code_vectors + (flat - flat.detach()) if flat.requires_grad else code_vectors
        codes = codes.reshape(z.shape[:-1])
        metrics = QF.counts_metrics(counts)
        metrics["restarted"] = torch.tensor(float(restarted), device=z.device)
        return QuantizerOutput(quantized.reshape(z.shape), codes, loss, metrics)

    def _encode(self, z: Tensor) -> Tensor:
        codes = QF.nearest_code(z.reshape(-1, self.dim), self.codebook, self._sqnorm(self.codebook))
        return codes.reshape(z.shape[:-1])

    def _decode(self, codes: Tensor) -> Tensor:
        return F.embedding(codes, self.codebook)
