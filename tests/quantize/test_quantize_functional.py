"""Pure functions: nearest code, counts, sums, perplexity, k-means, smoothing."""

from __future__ import annotations

import pytest
import torch

from audiotok.quantize import functional as QF


@pytest.mark.parametrize("block_elements", [1, 100, 5000, QF.DISTANCE_BLOCK_ELEMENTS])
def test_nearest_code_matches_brute_force(block_elements: int) -> None:
    z = torch.randn(777, 16)
    codebook = torch.randn(100, 16)
    reference = torch.cdist(z.double(), codebook.double()).argmin(dim=1)
    codes = QF.nearest_code(z, codebook, block_elements=block_elements)
    assert codes.dtype == torch.long and codes.shape == (777,)
    assert torch.equal(codes, reference)
    # precomputed codebook norms give the same answer
    norms = codebook.pow(2).sum(dim=1)
    assert torch.equal(QF.nearest_code(z, codebook, norms, block_elements=block_elements), codes)


def test_nearest_code_of_codebook_rows_is_themselves() -> None:
    codebook = torch.randn(64, 8)
    assert torch.equal(QF.nearest_code(codebook, codebook), torch.arange(64))


def test_nearest_code_never_builds_a_graph() -> None:
    z = torch.randn(10, 4, requires_grad=True)
    codebook = torch.randn(5, 4, requires_grad=True)
    assert not QF.nearest_code(z, codebook).requires_grad


def test_counts_and_sums_match_one_hot_reference() -> None:
    z = torch.randn(50, 3)
    codes = torch.randint(0, 7, (50,))
    one_hot = torch.nn.functional.one_hot(codes, 7).float()
    torch.testing.assert_close(QF.code_counts(codes, 7), one_hot.sum(dim=0))
    torch.testing.assert_close(QF.code_sums(z, codes, 7), one_hot.t() @ z)


def test_perplexity_and_usage() -> None:
    uniform = QF.usage_metrics(torch.arange(16).repeat(3), 16)
    assert float(uniform["perplexity"]) == pytest.approx(16.0)
    assert float(uniform["usage"]) == 1.0
    single = QF.usage_metrics(torch.zeros(10, dtype=torch.long), 16)
    assert float(single["perplexity"]) == pytest.approx(1.0)
    assert float(single["usage"]) == pytest.approx(1 / 16)
    assert single["counts"].tolist()[:2] == [10.0, 0.0]


@pytest.mark.parametrize("plusplus", [True, False])
def test_kmeans_recovers_separated_clusters_and_is_seeded(plusplus: bool) -> None:
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = centers.repeat(50, 1) + 0.1 * torch.randn(200, 2, generator=g)
    found, counts = QF.kmeans(
        x, 4, 10, plusplus=plusplus, generator=torch.Generator().manual_seed(3)
    )
    assert counts.sum() == 200
    if plusplus:  # random seeding may put two seeds in one cluster; k-means++ does not here
        assert torch.cdist(centers, found).min(dim=1).values.max() < 0.1
        assert sorted(counts.tolist()) == [50.0] * 4
    again, _ = QF.kmeans(x, 4, 10, plusplus=plusplus, generator=torch.Generator().manual_seed(3))
    assert torch.equal(found, again)


def test_kmeans_batched_over_groups() -> None:
    x = torch.randn(3, 100, 4)
    centroids, counts = QF.kmeans(x, 5, 3)
    assert centroids.shape == (3, 5, 4) and counts.shape == (3, 5)
    assert torch.all(counts.sum(dim=1) == 100)


def test_kmeans_with_fewer_points_than_clusters() -> None:
    centroids, counts = QF.kmeans(torch.randn(3, 2), 8, 2)
    assert centroids.shape == (8, 2) and counts.sum() == 3


def test_laplace_smoothing_keeps_the_total_and_removes_zeros() -> None:
    counts = torch.tensor([0.0, 5.0, 5.0])
    smoothed = QF.laplace_smoothing(counts, 1e-3)
    assert float(smoothed.sum()) == pytest.approx(10.0)
    assert float(smoothed[0]) > 0


def test_ema_update_in_place() -> None:
    avg = torch.tensor([1.0, 2.0])
    out = QF.ema_update_(avg, torch.tensor([3.0, 4.0]), 0.75)
    assert out is avg
    torch.testing.assert_close(avg, torch.tensor([1.5, 2.5]))


def test_squared_norm_cache_follows_in_place_updates() -> None:
    cache = QF.SquaredNormCache()
    codebook = torch.nn.Parameter(torch.randn(5, 3))
    first = cache(codebook)
    assert cache(codebook) is first  # unchanged codebook: cached
    with torch.no_grad():
        codebook.mul_(2.0)  # e.g. an optimizer step
    torch.testing.assert_close(cache(codebook), codebook.detach().pow(2).sum(dim=1))
    codebook.data = torch.randn(5, 3)  # replaced storage
    torch.testing.assert_close(cache(codebook), codebook.detach().pow(2).sum(dim=1))
