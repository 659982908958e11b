"""Pure tensor functions behind every codebook quantizer: nearest code, counts, k-means, EMA.

Everything works on flat fp32 tensors ``z: (N, D)`` and a codebook ``(K, D)`` (here K is
the codebook size). The nearest-code search expands ``||z - c||^2 = ||z||^2 - 2 z.c + ||c||^2``
and drops ``||z||^2`` (constant per row, so it cannot change the argmin): one
``torch.addmm`` per block of rows with the codebook norms as the bias, then ``argmin``. Rows are
processed in blocks so the ``(rows, K)`` distance block stays small (cache-resident) whatever
N is. Counts and per-code sums use ``bincount`` / ``index_add_``: no ``(N, K)`` one-hot matrix
is ever built.

References: VQ-VAE (arXiv:1711.00937, EMA codebook in its appendix); k-means codebook
initialisation as in SoundStream (arXiv:2107.03312) and EnCodec (arXiv:2210.13438), seeded
with k-means++ (Arthur & Vassilvitskii 2007) rather than random samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "DISTANCE_BLOCK_ELEMENTS",
    "nearest_code",
    "SquaredNormCache",
    "code_counts",
    "code_sums",
    "usage_metrics",
    "counts_metrics",
    "perplexity",
    "kmeans",
    "kmeans_plusplus",
    "ema_update_",
    "laplace_smoothing",
    "sample_rows",
]

#: Number of fp32 entries in one ``(rows, K)`` distance block (16 MiB, 4096 rows at K=1024):
#: bounds memory whatever N is, while keeping the number of kernel launches (and, on a CPU,
#: of OpenMP barriers, which dominate on a loaded machine) small. Smaller blocks were no
#: faster single-threaded and much slower with 2 threads on a busy machine (bench/README.md).
DISTANCE_BLOCK_ELEMENTS = 1 << 22


@torch.no_grad()
def nearest_code(
    z: Tensor,
    codebook: Tensor,
    codebook_sqnorm: Tensor | None = None,
    *,
    block_elements: int = DISTANCE_BLOCK_ELEMENTS,
) -> Tensor:
    """Index of the nearest codebook entry (squared Euclidean distance) for every row of ``z``.

    Args:
        z: ``(N, D)`` float.
        codebook: ``(K, D)`` float, same dtype and device as ``z``.
        codebook_sqnorm: ``(K,)`` the squared norms of the codebook rows; pass them when the
            same codebook is searched several times (computed here otherwise).
        block_elements: at most this many distance entries are materialised at once.

    Returns:
        ``(N,)`` long, ties broken towards the lower index.
    """
    n, k = z.shape[0], codebook.shape[0]
    if codebook_sqnorm is None:
        codebook_sqnorm = codebook.pow(2).sum(dim=1)
    codebook_t = codebook.t()
    rows = max(1, block_elements // max(k, 1))
    if n <= rows:
        # ||c||^2 - 2 z.c in one BLAS call (beta=1 on the broadcast bias, alpha=-2)
        return torch.addmm(codebook_sqnorm, z, codebook_t, alpha=-2.0).argmin(dim=1)
    codes = torch.empty(n, dtype=torch.long, device=z.device)
    block = z.new_empty(rows, k)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        dist = block[: stop - start]
        torch.addmm(codebook_sqnorm, z[start:stop], codebook_t, alpha=-2.0, out=dist)
        # a plain argmin: an amin-over-column-groups variant was 3% faster single-threaded but
        # 40% slower with 2 threads on a loaded machine (two more parallel ops per block)
        torch.argmin(dist, dim=1, out=codes[start:stop])
    return codes


class SquaredNormCache:
    """Caches ``codebook.pow(2).sum(1)`` until the codebook tensor changes.

    The key is the tensor's storage pointer, shape and autograd version counter, which every
    in-place change (an optimizer step, an EMA update, ``load_state_dict``) increments. Use it
    only for a persistent parameter or buffer, never for a temporary tensor whose memory the
    allocator may hand to the next temporary.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: Tensor | None = None

    def __call__(self, codebook: Tensor) -> Tensor:
        """``codebook: (K, D)`` -> ``(K,)`` squared row norms (detached)."""
        key = (codebook.data_ptr(), codebook._version, tuple(codebook.shape), codebook.device)
        if key != self._key or self._value is None:
            self._value = codebook.detach().pow(2).sum(dim=1)
            self._key = key
        return self._value


def code_counts(codes: Tensor, codebook_size: int) -> Tensor:
    """How often each code occurs: ``codes (N,)`` long -> ``(codebook_size,)`` float32."""
    return torch.bincount(codes.reshape(-1), minlength=codebook_size).float()


def code_sums(z: Tensor, codes: Tensor, codebook_size: int) -> Tensor:
    """Sum of the vectors assigned to each code: ``z (N, D)``, ``codes (N,)`` -> ``(K, D)``."""
    sums = z.new_zeros(codebook_size, z.shape[1])
    return sums.index_add_(0, codes, z)


def perplexity(counts: Tensor) -> Tensor:
    """``exp(entropy)`` of the code distribution; ``counts (..., K)`` -> ``(...)``.

    Equals K when all codes are used equally and 1 when a single code is used.
    """
    probs = counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=-1)
    return entropy.exp()


def usage_metrics(codes: Tensor, codebook_size: int) -> dict[str, Tensor]:
    """The standard metrics of one codebook: ``perplexity``, ``usage`` and ``counts``.

    Args:
        codes: any shape, long, non-negative.
        codebook_size: K.

    Returns:
        ``perplexity`` (scalar), ``usage`` (scalar, fraction of the K codes seen at least
        once) and ``counts`` ``(K,)`` float, all detached.
    """
    return counts_metrics(code_counts(codes.detach(), codebook_size))


def counts_metrics(counts: Tensor) -> dict[str, Tensor]:
    """``perplexity``, ``usage`` and ``counts`` from per-code counts ``(..., K)``."""
    return {
        "perplexity": perplexity(counts),
        "usage": (counts > 0).float().mean(dim=-1),
        "counts": counts,
    }


def sample_rows(x: Tensor, num: int, generator: torch.Generator | None = None) -> Tensor:
    """``num`` random rows of ``x (N, D)``: without replacement when ``N >= num``."""
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot sample rows from an empty tensor")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    if n >= num:
        index = torch.randperm(n, generator=generator, device=gen_device)[:num]
    else:
        index = torch.randint(0, n, (num,), generator=generator, device=gen_device)
    return x[index.to(x.device)]


@torch.no_grad()
def kmeans(
    x: Tensor,
    num_clusters: int,
    iters: int = 10,
    *,
    plusplus: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means, batched over a leading group axis.

    Args:
        x: ``(N, D)`` or ``(G, N, D)`` float (G independent problems, e.g. codebook groups).
        num_clusters: K.
        iters: Lloyd iterations; an empty cluster keeps its previous centroid.
        plusplus: seed with k-means++ (Arthur & Vassilvitskii, SODA 2007), which
            rarely leaves two centroids in one cluster; random distinct samples otherwise.
        generator: for reproducible initial samples.

    Returns:
        ``centroids (K, D)`` and ``counts (K,)`` float (the final cluster sizes), or
        ``(G, K, D)`` and ``(G, K)`` for a grouped input.
    """
    if x.dim() == 3:
        results = [
            kmeans(xg, num_clusters, iters, plusplus=plusplus, generator=generator) for xg in x
        ]
        return torch.stack([c for c, _ in results]), torch.stack([n for _, n in results])
    x = x.float()
    if plusplus and x.shape[0] > num_clusters:
        centroids = kmeans_plusplus(x, num_clusters, generator=generator)
    else:
        centroids = sample_rows(x, num_clusters, generator).clone()
    counts = x.new_zeros(num_clusters)
    for _ in range(max(iters, 1)):
        codes = nearest_code(x, centroids)
        counts = code_counts(codes, num_clusters)
        sums = code_sums(x, codes, num_clusters)
        filled = counts > 0
        centroids = torch.where(filled[:, None], sums / counts.clamp_min(1.0)[:, None], centroids)
    return centroids, counts


@torch.no_grad()
def kmeans_plusplus(
    x: Tensor, num_clusters: int, *, generator: torch.Generator | None = None
) -> Tensor:
    """k-means++ seeding: each new centroid is a sample drawn with probability ~ D(x)^2.

    Args:
        x: ``(N, D)`` float.
        num_clusters: K.
        generator: for reproducible draws.

    Returns:
        ``(K, D)`` initial centroids (rows of ``x``).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    n = x.shape[0]
    chosen = torch.empty(num_clusters, dtype=torch.long)
    chosen[0] = int(torch.randint(0, n, (1,), generator=generator, device=gen_device))
    sqnorm = x.pow(2).sum(dim=1)

    def sqdist(i: int) -> Tensor:  # ||x - x_i||^2 for all rows, one matrix-vector product
        return torch.addmv(sqnorm + sqnorm[i], x, x[i], alpha=-2.0).clamp_min_(0.0)

    closest = sqdist(int(chosen[0]))
    for i in range(1, num_clusters):
        weights = closest.to(gen_device)
        if float(weights.sum()) <= 0:  # fewer distinct points than clusters
            weights = torch.ones_like(weights)
        chosen[i] = int(torch.multinomial(weights, 1, generator=generator))
        torch.minimum(closest, sqdist(int(chosen[i])), out=closest)
    return x[chosen.to(x.device)].clone()


@torch.no_grad()
def ema_update_(average: Tensor, value: Tensor, decay: float) -> Tensor:
    """In place ``average <- decay * average + (1 - decay) * value``; returns ``average``."""
    return average.lerp_(value.to(average.dtype), 1.0 - decay)


def laplace_smoothing(counts: Tensor, epsilon: float = 1e-5) -> Tensor:
    """Additive smoothing of cluster sizes that keeps their total (no division by zero).

    ``counts (..., K)`` -> ``(counts + eps) / (n + K eps) * n`` with ``n = counts.sum()``.
    """
    total = counts.sum(dim=-1, keepdim=True)
    k = counts.shape[-1]
    return (counts + epsilon) / (total + k * epsilon) * total
