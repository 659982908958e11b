"""Autoregressive generation of codes with a :class:`~audiotok.prior.gpt.GPT` prior.

The loop (MusicGen, arXiv:2306.05284; nanoGPT's ``generate``) walks the pattern's step grid:
each step's logits come from a static KV cache sized to the request (layers.py), the codes
of the slots that the prompt already fixes are kept (a delay pattern's prompt reaches K-1 steps
past its last frame), the others are sampled (sampling.py), and slots without a code stay
EMPTY: the heads cannot emit a special id.

Design decisions:

* **Ragged prompts by left-padding with per-item positions.** Prompts of different lengths
  are right-aligned so that every item samples its first free step at the same iteration; the
  padding is masked out of attention and each item's RoPE positions start at 0 at its own
  start token. RoPE is relative, so an item's logits equal those it gets alone (a greedy
  batch gives exactly each item's greedy continuation; tested).
* **Past the trained context: a sliding window.** When the next step would not fit in
  ``block_size`` positions, the cache is rebuilt from the start token followed by the last
  ``3/4 block_size`` steps (positions re-based to 0), then decoding continues; the class token
  is therefore never lost. Batch == alone holds up to the first slide (after it, a padded item
  keeps its left neighbour's window length, not its own).
* **Streaming.** ``callback(frame)`` receives each new frame ``(B, K)`` once, in order, as soon
  as its last code is sampled (for a delay pattern, K-1 steps after its first); the frames
  concatenated along time equal the returned codes.
* ``use_cache=False`` recomputes the window at every step (the benchmark's baseline) and
  gives the same codes as the cached path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from audiotok.prior.sampling import apply_cfg, sample


def _prompts(
    prompt: Tensor | Sequence[Tensor] | None, batch: int, k: int, v: int, device
) -> list[Tensor]:
    if prompt is None:
        return [torch.zeros(k, 0, dtype=torch.long, device=device) for _ in range(batch)]
    items = list(prompt.unbind(0)) if isinstance(prompt, Tensor) and prompt.dim() == 3 else prompt
    out = []
    for p in items:
        if p.dim() != 2 or p.shape[0] != k or p.dtype.is_floating_point:
            raise ValueError(f"each prompt must be integer codes ({k}, T0), got {tuple(p.shape)}")
        if p.numel() and (int(p.min()) < 0 or int(p.max()) >= v):
            raise ValueError(f"prompt codes must be in 0..{v - 1}")
        out.append(p.long().to(device))
    return out


class _Window:
    """The model's view of the aligned grid: start token + steps ``[lo, upto)`` per item."""

    def __init__(self, model: nn.Module, grid: Tensor, pads: Tensor, start: Tensor) -> None:
        self.model, self.grid, self.pads, self.start = model, grid, pads, start

    def build(self, lo: int, upto: int) -> tuple[Tensor, Tensor, Tensor]:
        """Embeddings ``(B, W, D)``, positions ``(B, W)`` and key validity ``(B, W)``."""
        b = self.grid.shape[0]
        first = self.pads.clamp(min=lo) - lo  # window index of each item's start token
        x = torch.cat(
            [
                self.start.new_zeros(b, 1, self.start.shape[-1]),
                self.model.embed(self.grid[:, :, lo:upto]),
            ],
            dim=1,
        )
        x[torch.arange(b, device=x.device), first] = self.start[:, 0]
        index = torch.arange(x.shape[1], device=x.device)[None]
        self.first = first
        return x, (index - first[:, None]).clamp(min=0), index >= first[:, None]


def _prefill_mask(valid: Tensor) -> Tensor | None:
    """Causal mask that also hides padding keys (each position still sees itself)."""
    if bool(valid.all()):
        return None
    w = valid.shape[1]
    causal = torch.ones(w, w, dtype=torch.bool, device=valid.device).tril()
    return (causal & (valid[:, None, :] | torch.eye(w, dtype=torch.bool, device=valid.device)))[
        :, None
    ]


@torch.no_grad()
def generate(
    model: nn.Module,
    num_frames: int,
    *,
    prompt: Tensor | Sequence[Tensor] | None = None,
    class_labels: Tensor | None = None,
    batch_size: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    cfg_scale: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[Tensor], None] | None = None,
    use_cache: bool = True,
) -> Tensor:
    """Generate ``num_frames`` new frames after each prompt (or from nothing).

    Args:
        model: a :class:`~audiotok.prior.gpt.GPT` (not imported here: gpt.py imports this
            module for ``GPT.generate``); switched to eval mode for the call, then restored.
        num_frames: N, frames to generate per item.
        prompt: codes ``(B, K, T0)``, or a list of ``(K, T0_b)`` of different lengths, or None.
        class_labels: ``(B,)`` labels or None (the null class: unconditional).
        batch_size: B when neither a prompt nor labels give it (default 1).
        temperature, top_k, top_p: see :func:`audiotok.prior.sampling.sample` (0 = greedy).
        cfg_scale: classifier-free guidance; 1 = plain conditional sampling (no extra cost),
            0 = unconditional, > 1 = guided (needs ``class_labels``).
        generator: seeded ``torch.Generator`` for reproducible samples.
        callback: called with each completed frame ``(B, K)``, in order, exactly once.
        use_cache: False recomputes every step from scratch (same result, slower).

    Returns:
        The new codes only, ``(B, K, N)`` long (prepend the prompt yourself).
    """
    cfg, device = model.config, model.offsets.device
    pattern, k = cfg.pattern, cfg.num_codebooks
    batch = (
        len(prompt)
        if prompt is not None
        else class_labels.shape[0]
        if class_labels is not None
        else batch_size or 1
    )
    prompts = _prompts(prompt, batch, k, cfg.codebook_size, device)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames == 0:
        return torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    guided = cfg_scale != 1.0
    if guided and (class_labels is None or cfg.num_classes == 0):
        raise ValueError("cfg_scale != 1 needs class_labels and a model with num_classes > 0")

    # Each item's grid, right-aligned on the first step it has to sample (see module doc).
    lengths = [p.shape[1] for p in prompts]
    firsts = [int(pattern.positions(t0 + 1)[:, t0].min()) for t0 in lengths]
    max_first = max(firsts)
    pads = torch.tensor([max_first - f for f in firsts], device=device)
    steps = pattern.num_steps(lengths[0] + num_frames) - firsts[0]  # same for every item
    total = max_first + steps
    grid = torch.full((batch, k, total), -1, dtype=torch.long, device=device)
    present = torch.zeros(batch, k, total, dtype=torch.bool, device=device)
    for i, (p, pad) in enumerate(zip(prompts, pads.tolist(), strict=True)):
        full = torch.cat([p, p.new_full((k, num_frames), -1)], dim=1)[None]
        seq, mask = pattern.build(full)
        grid[i, :, pad:] = seq[0]
        present[i, :, pad:] = mask
    known = grid >= 0
    aligned = pattern.positions(lengths[0] + num_frames, device)[:, lengths[0] :] + int(pads[0])
    done_at = aligned.amax(dim=0).tolist()  # (N,) step completing each new frame

    labels = class_labels.to(device) if class_labels is not None else None
    if guided:
        labels = torch.cat([labels, torch.full_like(labels, model.null_class)])
    rows = 2 * batch if guided else batch
    start = model.start_embedding(labels, rows)
    view_grid = grid.repeat(2, 1, 1) if guided else grid
    window = _Window(model, view_grid, pads.repeat(2) if guided else pads, start)
    capacity = min(cfg.block_size, total)
    keep = max(1, 3 * cfg.block_size // 4 - 1)
    cache = model.transformer.new_cache(rows, capacity, start) if use_cache else None

    def context(lo: int, upto: int) -> Tensor:
        if cache is not None:
            cache.reset()
        x, positions, valid = window.build(lo, upto)
        logits = model.run(x, positions, cache=cache, attn_mask=_prefill_mask(valid))
        window.valid = valid
        return logits[:, :, -1]

    was_training = model.training
    model.eval()
    try:
        lo = 0 if max_first + 1 <= capacity else max_first - keep
        logits = context(lo, max_first)
        window_lo, next_frame = lo, 0
        for s in range(max_first, total):
            if guided:
                logits = apply_cfg(logits[:batch], logits[batch:], cfg_scale)
            drawn = sample(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            column = torch.where(known[:, :, s], grid[:, :, s], drawn)
            grid[:, :, s] = torch.where(present[:, :, s], column, -1)
            if guided:
                view_grid[:, :, s] = grid[:, :, s].repeat(2, 1)
            while callback is not None and next_frame < num_frames and done_at[next_frame] == s:
                callback(
                    grid.gather(2, aligned[None, :, next_frame, None].expand(batch, k, 1))[..., 0]
                )
                next_frame += 1
            if s + 1 == total:
                break
            if s + 1 - lo + 1 > capacity:  # the fed step would not fit: slide the window
                lo = s + 1 - keep
            if cache is None or cache.length == 0 or lo != window_lo:
                logits = context(lo, s + 1)
            else:
                j = s + 1 - lo  # window index of step s
                positions = (j - window.first).clamp(min=0)[:, None]
                valid = window.valid
                mask = (
                    None
                    if bool(valid.all())
                    else torch.cat([valid, valid.new_ones(rows, 1)], dim=1)[:, None, None]
                )
                window.valid = torch.cat([valid, valid.new_ones(rows, 1)], dim=1)
                logits = model.run(
                    model.embed(view_grid[:, :, s : s + 1]), positions, cache=cache, attn_mask=mask
                )[:, :, -1]
            window_lo = lo
    finally:
        model.train(was_training)
    return grid.gather(2, aligned[None].expand(batch, k, num_frames))
