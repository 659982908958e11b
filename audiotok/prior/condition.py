"""Conditioning a prior on a coarser code grid: VQ-VAE-2's bottom prior given the top codes.

VQ-VAE-2 (Razavi et al., arXiv:1906.00446) samples its codes level by level: a prior over the
top grid, then a prior over the bottom grid *conditioned on the whole top grid*. The paper's
bottom PixelCNN receives the top codes through a conditioning stack that sees all of them;
rosinality's ``pixelsnail.py`` upsamples the embedded top map onto the bottom grid and adds it
to every layer. Here the same idea fits a causal Transformer (:class:`~audiotok.prior.gpt.GPT`):

1. each top cell's ``Kc`` codes are embedded (one table per codebook, summed);
2. a small **non-causal** Transformer mixes all top cells, so every bottom position knows the
   whole top map, not only the cells before it in raster order;
3. each cell's vector is repeated over its ``r x r`` block of the fine grid, plus a learned
   embedding of the position inside the block;
4. the result, one vector per fine frame, is **added to the input of the position that
   predicts that frame** (the start token predicts frame 0, frame ``t``'s input predicts
   ``t + 1``), so the conditioning of the frame being predicted is always spatially aligned.

Nothing here knows about images or VQ-VAE-2: it maps a ``(B, Kc, h, w)`` code grid to
``(B, H W, D)`` frame embeddings for any ``(H, W) = (r h, r w)``.
:func:`split_packed_levels` reads the two levels out of the packed layout of an image
tokenizer's codes (top rows, then the bottom folded space-to-depth; see
:mod:`audiotok.tokenizer.image`), which is how two-level codes sit in token shards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audiotok.prior.layers import Transformer

__all__ = ["GridCondition", "pack_levels", "split_packed_levels"]


def split_packed_levels(
    codes: Tensor, top_rows: int, top_shape: tuple[int, int], ratio: int
) -> tuple[Tensor, Tensor]:
    """Packed two-level codes in raster order -> ``(top (B, Kt, h, w), bottom (B, Kb, H W))``.

    Args:
        codes: ``(B, Kt + r*r*Kb, h*w)``: rows ``[0, Kt)`` are the top codes, the rest the
            bottom codes folded space-to-depth (row ``Kt + (k r + p) r + q`` of cell ``(i, j)``
            is the bottom code ``k`` at ``(i r + p, j r + q)``).
        top_rows: Kt.
        top_shape: ``(h, w)``.
        ratio: r, bottom cells per top cell along each side.

    Returns:
        The top grid and the bottom codes in raster order over ``(r h, r w)``.
    """
    b, rows, frames = codes.shape
    h, w = top_shape
    folded = rows - top_rows
    if frames != h * w or folded <= 0 or folded % (ratio * ratio):
        raise ValueError(
            f"packed codes {tuple(codes.shape)} do not hold {top_rows} top rows on a {h}x{w} "
            f"grid plus bottom rows folded {ratio}x{ratio}"
        )
    kb = folded // (ratio * ratio)
    top = codes[:, :top_rows].reshape(b, top_rows, h, w)
    bottom = codes[:, top_rows:].reshape(b, kb, ratio, ratio, h, w)
    bottom = bottom.permute(0, 1, 4, 2, 5, 3).reshape(b, kb, h * ratio * w * ratio)
    return top, bottom


def pack_levels(top: Tensor, bottom: Tensor, ratio: int) -> Tensor:
    """Inverse of :func:`split_packed_levels`: ``top (B, Kt, h, w)`` and ``bottom (B, Kb,
    (r h)(r w))`` in raster order -> packed ``(B, Kt + r*r*Kb, h, w)``."""
    b, kt, h, w = top.shape
    kb = bottom.shape[1]
    if bottom.shape != (b, kb, h * ratio * w * ratio):
        raise ValueError(
            f"bottom codes {tuple(bottom.shape)} are not a {ratio}x grid of the top {h}x{w}"
        )
    folded = bottom.reshape(b, kb, h, ratio, w, ratio).permute(0, 1, 3, 5, 2, 4)
    return torch.cat([top, folded.reshape(b, kb * ratio * ratio, h, w)], dim=1)


class GridCondition(nn.Module):
    """Codes of a coarse grid ``(B, Kc, h, w)`` -> aligned embeddings ``(B, H W, D)``.

    Args:
        num_codebooks: Kc, codes per coarse cell.
        codebook_size: Vc.
        shape: ``(h, w)``, the coarse grid.
        fine_shape: ``(H, W)``, the grid of the frames being predicted; a multiple r of
            ``shape`` on both sides.
        dim, num_heads, num_layers, mlp_ratio, dropout, bias, rope_base: the mixing
            Transformer (non-causal; ``num_layers = 0`` keeps each cell's embedding alone).
    """

    def __init__(
        self,
        *,
        num_codebooks: int,
        codebook_size: int,
        shape: tuple[int, int],
        fine_shape: tuple[int, int],
        dim: int,
        num_heads: int,
        num_layers: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        bias: bool = False,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        (h, w), (fh, fw) = shape, fine_shape
        if h < 1 or w < 1 or fh % h or fw % w or fh // h != fw // w:
            raise ValueError(
                f"the fine grid {fine_shape} must be the same whole multiple of {shape} on "
                "both sides"
            )
        self.num_codebooks, self.codebook_size = num_codebooks, codebook_size
        self.shape, self.fine_shape, self.ratio = (h, w), (fh, fw), fh // h
        self.emb = nn.Embedding(num_codebooks * codebook_size, dim)
        self.offset = nn.Embedding(self.ratio * self.ratio, dim)
        self.mix = (
            Transformer(
                dim=dim,
                num_heads=num_heads,
                num_layers=num_layers,
                mlp_ratio=mlp_ratio,
                dropout=dropout,
                bias=bias,
                max_positions=h * w,
                rope_base=rope_base,
            )
            if num_layers > 0
            else None
        )
        for emb in (self.emb, self.offset):
            nn.init.normal_(emb.weight, mean=0.0, std=0.02)
        self.register_buffer(
            "offsets", torch.arange(num_codebooks)[:, None] * codebook_size, persistent=False
        )
        r = self.ratio
        # offset index of each fine frame in raster order: (p, q) inside its r x r block
        rows = torch.arange(fh)[:, None] % r
        cols = torch.arange(fw)[None, :] % r
        self.register_buffer("block_pos", (rows * r + cols).reshape(-1), persistent=False)

    def check(self, cond: Tensor) -> None:
        """ValueError unless ``cond`` is ``(B, Kc, h, w)`` integer codes in range."""
        want = (self.num_codebooks, *self.shape)
        if cond.dim() != 4 or tuple(cond.shape[1:]) != want or cond.dtype.is_floating_point:
            raise ValueError(
                f"conditioning codes must be integers (B, {want[0]}, {want[1]}, {want[2]}), "
                f"got {tuple(cond.shape)} {cond.dtype}"
            )
        if cond.numel() and (int(cond.min()) < 0 or int(cond.max()) >= self.codebook_size):
            raise ValueError(f"conditioning codes must be in 0..{self.codebook_size - 1}")

    def forward(self, cond: Tensor) -> Tensor:
        """``cond: (B, Kc, h, w)`` -> ``(B, H W, D)``, one vector per fine frame (raster)."""
        self.check(cond)
        b = cond.shape[0]
        h, w = self.shape
        ids = (cond.long().reshape(b, self.num_codebooks, h * w) + self.offsets).transpose(1, 2)
        x = self.emb(ids).sum(dim=2)  # (B, h w, D)
        if self.mix is not None:
            x = self.mix(x, torch.arange(h * w, device=x.device))
        r = self.ratio
        x = x.reshape(b, h, 1, w, 1, -1).expand(b, h, r, w, r, x.shape[-1])
        x = x.reshape(b, h * r * w * r, -1)
        return x + self.offset(self.block_pos)
