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
  is therefore never lost. Batch == alone holds until the first slide: a batch slides when
  its longest item fills the context, an item alone when it does itself.
* **Streaming.** ``callback(frame)`` receives each new frame ``(B, K)`` once, in order, as soon
  as its last code is sampled (for a delay pattern, K-1 steps after its first); the frames
  concatenated along time equal the returned codes.
* ``use_cache=False`` recomputes the window at every step (the benchmark's baseline) and
  gives the same codes as the cached path.
"""

from __future__ import annotations

import math
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


class _Decoder:
    """Feeds the aligned grid to the model: start token + steps ``[lo, upto)`` per item.

    Holds the request-sized cache (or none), each item's window index of its start token
    (``first``) and which cached keys are padding (``valid``). ``copies = 2`` runs every item
    twice, conditional then null class, for classifier-free guidance.
    """

    def __init__(
        self,
        model: nn.Module,
        grid: Tensor,
        present: Tensor,
        pads: Tensor,
        start: Tensor,
        *,
        copies: int,
        capacity: int,
        keep: int,
        use_cache: bool,
        cond_steps: Tensor | None = None,
    ) -> None:
        self.model, self.grid, self.start, self.copies = model, grid, start, copies
        # (rows, S, D) added to the input that predicts each step (a conditioned prior:
        # whole grids, no prompt, no sliding, so window index j predicts step j)
        self.cond = None if cond_steps is None else cond_steps.repeat(copies, 1, 1)
        self.present = present  # (K, S) which codebooks each aligned step holds
        self.pads, self.capacity, self.keep = pads.repeat(copies), capacity, keep
        rows = start.shape[0]
        self.cache = model.transformer.new_cache(rows, capacity, start) if use_cache else None
        self.valid = torch.zeros(rows, capacity, dtype=torch.bool, device=start.device)
        self.lo, self.padded = 0, False
        self.first = torch.zeros(rows, dtype=torch.long, device=start.device)

    def _embed(self, lo: int, upto: int) -> Tensor:
        return self.model.embed(self.grid[:, :, lo:upto]).repeat(self.copies, 1, 1)

    def prefill(self, lo: int, upto: int) -> Tensor:
        """Run the window ``[lo, upto)`` from scratch; logits of step ``upto``: ``(rows, K, V)``."""
        rows = self.start.shape[0]
        self.lo = lo
        self.first = self.pads.clamp(min=lo) - lo  # window index of each item's start token
        x = torch.cat(
            [self.start.new_zeros(rows, 1, self.start.shape[-1]), self._embed(lo, upto)], 1
        )
        x[torch.arange(rows, device=x.device), self.first] = self.start[:, 0]
        if self.cond is not None:
            x = x + self.cond[:, lo : upto + 1]
        index = torch.arange(x.shape[1], device=x.device)[None]
        valid = index >= self.first[:, None]
        self.valid[:, : x.shape[1]] = valid
        self.padded = not bool(valid.all())
        mask = None
        if self.padded:  # causal, padding keys hidden, every position sees itself
            w = x.shape[1]
            causal = torch.ones(w, w, dtype=torch.bool, device=x.device).tril()
            eye = torch.eye(w, dtype=torch.bool, device=x.device)
            mask = (causal & (valid[:, None, :] | eye))[:, None]
        if self.cache is not None:
            self.cache.reset()
        positions = (index - self.first[:, None]).clamp(min=0)
        hidden = self.model.transform(x, positions, cache=self.cache, attn_mask=mask)
        return self._heads(hidden[:, -1], upto)  # heads on the last position only

    def feed(self, s: int) -> Tensor:
        """Append step ``s`` (sliding the window if full); logits of step ``s + 1``."""
        j = s + 1 - self.lo  # window index of step s
        if j + 1 > self.capacity:  # past the trained context: re-base on the recent steps
            return self.prefill(s + 1 - self.keep, s + 1)
        if self.cache is None:
            return self.prefill(self.lo, s + 1)
        self.valid[:, j] = True
        mask = self.valid[:, None, None, : j + 1] if self.padded else None
        positions = (j - self.first).clamp(min=0)[:, None]
        x = self._embed(s, s + 1)
        if self.cond is not None:
            x = x + self.cond[:, s + 1 : s + 2]
        hidden = self.model.transform(x, positions, cache=self.cache, attn_mask=mask)
        return self._heads(hidden[:, -1], s + 1)

    def _heads(self, hidden: Tensor, s: int) -> Tensor:
        """Logits ``(rows, K, V)`` of step ``s`` from ``hidden: (rows, D)``.

        Only the heads of the codebooks that step ``s`` holds are computed (one of K for
        flatten); the other rows are zeros and their draws are discarded.
        """
        if s >= self.grid.shape[2] or bool(self.present[:, s].all()):
            return self.model.logits(hidden[:, None])[:, :, 0]
        need = self.present[:, s]
        k = need.shape[0]
        weight = self.model.head.weight.view(k, -1, hidden.shape[-1])[need]  # (K', V, D)
        logits = hidden.new_zeros(hidden.shape[0], k, weight.shape[1])
        logits[:, need] = torch.einsum("rd,kvd->rkv", hidden, weight)
        return logits


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
    cond: Tensor | None = None,
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
        cond: the conditioning grid ``(B, Kc, h, w)`` of a conditioned prior (VQ-VAE-2's
            bottom prior given the top codes); it then draws whole grids
            (``num_frames = H' W'``) without a prompt.

    Returns:
        The new codes only, ``(B, K, N)`` long (prepend the prompt yourself).
    """
    cfg, device = model.config, model.offsets.device
    pattern, k = cfg.pattern, cfg.num_codebooks
    if prompt is not None:
        batch = len(prompt)
    elif cond is not None:
        batch = cond.shape[0]
    elif class_labels is not None:
        batch = class_labels.shape[0]
    else:
        batch = batch_size or 1
    if batch_size is not None and batch_size != batch:
        raise ValueError(f"batch_size {batch_size} disagrees with the {batch} prompts/labels")
    prompts = _prompts(prompt, batch, k, cfg.codebook_size, device)
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames == 0:
        return torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    conditioned = getattr(model, "condition", None) is not None or cond is not None
    if conditioned:
        frames = math.prod(cfg.latent_shape) if cfg.latent_shape else -1
        if prompt is not None or num_frames != frames:
            raise ValueError(
                f"a conditioned prior draws whole {tuple(cfg.latent_shape)} grids "
                f"(num_frames={frames}) without a prompt"
            )
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
    capacity = min(cfg.block_size, total)
    was_training = model.training
    model.eval()  # also keeps dropout out of the conditioning stack
    try:
        decoder = _Decoder(
            model,
            grid,
            present.any(dim=0),
            pads,
            model.start_embedding(labels, 2 * batch if guided else batch),
            copies=2 if guided else 1,
            capacity=capacity,
            keep=max(1, 3 * cfg.block_size // 4 - 1),
            use_cache=use_cache,
            cond_steps=model.condition_steps(cond, batch) if conditioned else None,
        )
        lo = 0 if max_first + 1 <= capacity else max_first - decoder.keep
        logits = decoder.prefill(lo, max_first)
        next_frame = 0
        for s in range(max_first, total):
            if guided:
                logits = apply_cfg(logits[:batch], logits[batch:], cfg_scale)
            drawn = sample(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            column = torch.where(known[:, :, s], grid[:, :, s], drawn)  # keep prompt codes
            grid[:, :, s] = torch.where(present[:, :, s], column, -1)  # EMPTY stays EMPTY
            while callback is not None and next_frame < num_frames and done_at[next_frame] == s:
                index = aligned[None, :, next_frame, None].expand(batch, k, 1)
                callback(grid.gather(2, index)[..., 0])
                next_frame += 1
            if s + 1 < total:
                logits = decoder.feed(s)
    finally:
        model.train(was_training)
    return grid.gather(2, aligned[None].expand(batch, k, num_frames))
