"""A causal Transformer prior over codes ``(B, K, T)``, readable like nanoGPT's ``model.py``.

The codes are laid out on a step grid by the config's :class:`~audiotok.prior.patterns.Pattern`
(MusicGen, Copet et al., arXiv:2306.05284). Each step's input is the **sum of the embeddings of
the codes it holds** (one embedding table per codebook, stored as one ``(K V, D)`` table with
offsets ``k V``), and **K output heads** (one ``(D, K V)`` linear read as K heads of V) predict
the next step's codes: the MusicGen / EnCodec-LM layout for parallel and delay patterns. With
the flatten pattern every step holds one code, so the same parameters *are* one embedding over
the K V vocabulary of :class:`~audiotok.prior.vocab.LMVocab` and one head over it, i.e. a flat
LM (nanoGPT, https://github.com/karpathy/nanoGPT) whose logits outside the current codebook are
masked. The heads output codes only, so EMPTY and the other special ids can never be sampled.

Position 0 holds a start token chosen by the class (``num_classes`` rows plus a null row used
for unconditional and classifier-free-guided generation, dropped to with probability
``class_dropout`` in training). Blocks are pre-norm, attention is
``F.scaled_dot_product_attention`` with RoPE (arXiv:2104.09864); see layers.py.

A conditioned prior (``cond_codebooks > 0``, VQ-VAE-2's bottom prior) adds, to the input that
predicts each frame, an embedding of a coarser code grid aligned to that frame
(:mod:`audiotok.prior.condition`); loss, score and generate then take ``cond``.

Over 400 lines because the config, the model, its loss, windowed scoring and conditioning
form one contract that export, the trainer and generation all read; splitting it would
scatter the layout rules this docstring states.

The pattern is part of the config (a model is trained for one layout), so ``loss``, ``score``
and ``generate`` take and return raw codes ``(B, K, T)``, never step grids. Typical use::

    cfg = GPTConfig(num_codebooks=8, codebook_size=1024, pattern=delay(8), block_size=1024)
    prior = GPT(cfg)
    loss, per_codebook = prior.loss(codes)          # codes: (B, K, T), T + 7 <= block_size
    new = prior.generate(num_frames=750, prompt=codes[..., :225], temperature=0.9, top_k=250)
    prior.save_pretrained("my_prior/"); prior = load_prior("my_prior/")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.config import StrictConfig, check_keys
from audiotok.prior.condition import GridCondition, split_packed_levels
from audiotok.prior.generate import generate
from audiotok.prior.io import save_pretrained
from audiotok.prior.layers import KVCache, Transformer
from audiotok.prior.patterns import Pattern, get_pattern


@dataclass(frozen=True)
class GPTConfig(StrictConfig):
    """Shape of a :class:`GPT` prior.

    Args:
        num_codebooks: K.
        codebook_size: V.
        pattern: how codes are laid out on steps (must have K codebooks).
        block_size: trained context in positions (start token + steps).
        num_layers, num_heads, dim: Transformer depth, heads and width D.
        mlp_ratio: MLP hidden width / D.
        dropout: dropout in attention, MLP and embeddings during training.
        bias: biases in linear layers and LayerNorms.
        num_classes: class labels for conditioning (0 = unconditional only).
        class_dropout: probability of replacing a label by the null class in training (CFG).
        rope_base: RoPE frequency base.
        tokenizer_id: model id of the tokenizer whose codes the prior models ("" unknown);
            filled in from the token shards when a prior is trained, so ``generate`` can
            refuse a tokenizer the prior was not trained on.
        latent_shape: ``(H', W')`` of the image code grids the prior models in raster order
            (``()`` for audio); filled in from image token shards like ``tokenizer_id``.
        cond_codebooks: Kc > 0 makes a *conditioned* prior (VQ-VAE-2's bottom prior): every
            call then takes ``cond``, codes ``(B, Kc, h, w)`` of a coarser grid, added aligned
            to each frame's input (:mod:`audiotok.prior.condition`). 0: none.
        cond_codebook_size: Vc of the conditioning codes.
        cond_shape: ``(h, w)`` of the conditioning grid; ``latent_shape`` must be a whole
            multiple of it (r on both sides), and the prior models whole grids.
        cond_layers: depth of the non-causal Transformer that mixes the conditioning grid.
    """

    num_codebooks: int
    codebook_size: int
    pattern: Pattern
    block_size: int = 1024
    num_layers: int = 6
    num_heads: int = 8
    dim: int = 512
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    bias: bool = False
    num_classes: int = 0
    class_dropout: float = 0.1
    rope_base: float = 10000.0
    tokenizer_id: str = ""
    latent_shape: tuple[int, ...] = ()
    cond_codebooks: int = 0
    cond_codebook_size: int = 0
    cond_shape: tuple[int, ...] = ()
    cond_layers: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.pattern, Pattern):
            raise ValueError(f"pattern must be a Pattern, got {type(self.pattern).__name__}")
        if self.pattern.num_codebooks != self.num_codebooks:
            raise ValueError(
                f"pattern has {self.pattern.num_codebooks} codebooks, config {self.num_codebooks}"
            )
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError("dim must be num_heads times an even head size")
        if self.block_size < 2 or not 0.0 <= self.class_dropout <= 1.0:
            raise ValueError("block_size must be >= 2 and class_dropout in [0, 1]")
        if self.cond_codebooks:
            frames = math.prod(self.latent_shape) if len(self.latent_shape) == 2 else 0
            if self.cond_codebook_size < 1 or len(self.cond_shape) != 2 or not frames:
                raise ValueError(
                    "a conditioned prior (cond_codebooks > 0) needs cond_codebook_size, a 2-D "
                    "cond_shape and a 2-D latent_shape"
                )
            if self.pattern.num_steps(frames) > self.block_size:
                raise ValueError(
                    f"a conditioned prior models whole {self.latent_shape} grids: "
                    f"{self.pattern.num_steps(frames)} steps exceed block_size {self.block_size}"
                )

    @property
    def cond_ratio(self) -> int:
        """r, fine cells per conditioning cell along each side (0 when not conditioned)."""
        return self.latent_shape[0] // self.cond_shape[0] if self.cond_codebooks else 0

    @property
    def packed_rows(self) -> int:
        """Code rows of the packed two-level layout a conditioned prior reads (top rows, then
        the bottom rows folded r x r; :func:`~audiotok.prior.condition.split_packed_levels`)."""
        return self.cond_codebooks + self.cond_ratio**2 * self.num_codebooks

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the pattern as a nested dict)."""
        d = super().to_dict()
        d["pattern"] = self.pattern.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a ValueError naming them.

        ``pattern`` may also be a name for :func:`~audiotok.prior.patterns.get_pattern` with
        its defaults (e.g. ``"delay"``); :meth:`to_dict` always writes the explicit layout.
        """
        check_keys(cls, d)
        d = dict(d)
        pattern = d.get("pattern")
        if isinstance(pattern, str):  # a recipe may name it: "delay", "flatten", ...
            d["pattern"] = get_pattern(pattern, int(d["num_codebooks"]))
        elif isinstance(pattern, dict):
            d["pattern"] = Pattern.from_dict(pattern)
        return super().from_dict(d)


class GPT(nn.Module):
    """Causal prior over code grids; see the module docstring for the layout."""

    family = "prior_gpt"  # the name in an exported config.json (and the model registry)
    config_class = GPTConfig
    modality = "prior"  # what the trainer builds a task for (audiotok.training.build)

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        k, v, dim = config.num_codebooks, config.codebook_size, config.dim
        self.start = nn.Embedding(config.num_classes + 1, dim)  # last row: the null class
        self.tok_emb = nn.Embedding(k * v, dim)
        self.drop = nn.Dropout(config.dropout)
        self.transformer = Transformer.from_config(config, config.block_size)
        self.head = nn.Linear(dim, k * v, bias=False)
        self.condition: GridCondition | None = None
        if config.cond_codebooks:
            self.condition = GridCondition(
                num_codebooks=config.cond_codebooks,
                codebook_size=config.cond_codebook_size,
                shape=tuple(config.cond_shape),
                fine_shape=tuple(config.latent_shape),
                dim=dim,
                num_heads=config.num_heads,
                num_layers=config.cond_layers,
                mlp_ratio=config.mlp_ratio,
                dropout=config.dropout,
                bias=config.bias,
                rope_base=config.rope_base,
            )
        for emb in (self.start, self.tok_emb):
            nn.init.normal_(emb.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        self.register_buffer("offsets", torch.arange(k)[:, None] * v, persistent=False)

    @property
    def null_class(self) -> int:
        """The label of the unconditional start token."""
        return self.config.num_classes

    # -- pieces used by forward and by the generation loop ------------------------------
    def start_embedding(self, class_labels: Tensor | None, batch: int) -> Tensor:
        """Start-token embeddings ``(B, 1, D)``; ``class_labels: (B,)`` or None (null class)."""
        if class_labels is None:
            class_labels = torch.full((batch,), self.null_class, device=self.offsets.device)
        if class_labels.shape != (batch,):
            raise ValueError(f"class_labels must be ({batch},), got {tuple(class_labels.shape)}")
        if int(class_labels.min()) < 0 or int(class_labels.max()) > self.null_class:
            raise ValueError(f"class labels must be in 0..{self.null_class} (null class last)")
        return self.start(class_labels.long().to(self.offsets.device))[:, None]

    def embed(self, seq: Tensor) -> Tensor:
        """Sum of the code embeddings of each step: ``seq: (B, K, L)`` -> ``(B, L, D)``.

        Slots holding :data:`~audiotok.prior.patterns.EMPTY_CODE` (any negative) add nothing.
        """
        b, k, length = seq.shape
        ids = (seq.clamp(min=0) + self.offsets).transpose(1, 2).reshape(b * length, k)
        present = (seq >= 0).transpose(1, 2).reshape(b * length, k).to(self.tok_emb.weight.dtype)
        # one bag of K codes per step: no (B, K, L, D) intermediate
        out = F.embedding_bag(ids, self.tok_emb.weight, mode="sum", per_sample_weights=present)
        return out.view(b, length, self.tok_emb.embedding_dim)

    def logits(self, hidden: Tensor) -> Tensor:
        """K heads: ``hidden: (B, L, D)`` -> ``(B, K, L, V)``."""
        b, length, _ = hidden.shape
        out = self.head(hidden).view(b, length, self.config.num_codebooks, -1)
        return out.transpose(1, 2)

    def transform(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        cache: KVCache | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """The Transformer on input embeddings ``x: (B, L, D)`` -> hidden states ``(B, L, D)``.

        Without ``attn_mask`` attention is causal among the L positions (and, with a cache,
        to every cached position before them).
        """
        causal = True
        if attn_mask is None and cache is not None and cache.length > 0:
            # SDPA's is_causal aligns top-left, wrong for queries after cached keys
            ln, total = x.shape[1], cache.length + x.shape[1]
            if ln == 1:
                causal = False  # one new position sees every cached one
            else:
                attn_mask = torch.ones(ln, total, dtype=torch.bool, device=x.device)
                attn_mask = attn_mask.tril(total - ln)
        return self.transformer(
            self.drop(x), positions, attn_mask=attn_mask, is_causal=causal, cache=cache
        )

    def run(
        self,
        x: Tensor,
        positions: Tensor,
        *,
        cache: KVCache | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """:meth:`transform` then the K heads: logits ``(B, K, L, V)`` (the generation step)."""
        return self.logits(self.transform(x, positions, cache=cache, attn_mask=attn_mask))

    def condition_steps(self, cond: Tensor | None, batch: int) -> Tensor | None:
        """The conditioning added to each step's input: ``(B, S, D)`` for a whole grid, where
        position ``s`` (which predicts step ``s``) gets the embedding of step ``s``'s frame;
        None for an unconditioned prior. ValueError when ``cond`` is missing or extra."""
        if self.condition is None:
            if cond is not None:
                raise ValueError("this prior is not conditioned (cond_codebooks = 0)")
            return None
        if cond is None:
            raise ValueError(
                "this prior is conditioned on a coarser code grid: pass cond "
                f"(B, {self.config.cond_codebooks}, {self.config.cond_shape[0]}, "
                f"{self.config.cond_shape[1]})"
            )
        if cond.shape[0] != batch:
            raise ValueError(f"cond has {cond.shape[0]} items, the codes {batch}")
        frames = self.condition(cond.to(self.offsets.device))  # (B, T, D)
        t = frames.shape[1]
        index = torch.arange(t, device=frames.device).expand(1, self.config.num_codebooks, t)
        step_frame = self.config.pattern.build(index)[0][0].amax(dim=0)  # (S,) frame of step
        return frames[:, step_frame.clamp(min=0)]

    def split_packed(self, packed: Tensor) -> tuple[Tensor, Tensor]:
        """A conditioned prior's view of packed two-level rows ``(B, packed_rows, h w)``:
        ``(codes (B, K, H' W'), cond (B, Kc, h, w))``."""
        cfg = self.config
        top, bottom = split_packed_levels(
            packed, cfg.cond_codebooks, tuple(cfg.cond_shape), cfg.cond_ratio
        )
        return bottom[:, : cfg.num_codebooks], top

    # -- training and scoring -------------------------------------------------------------
    def hidden_states(
        self, seq: Tensor, class_labels: Tensor | None = None, cond_steps: Tensor | None = None
    ) -> Tensor:
        """Hidden states of a grid ``seq: (B, K, S)`` -> ``(B, S, D)``; step s sees steps < s
        (and, for a conditioned prior, ``cond_steps`` from :meth:`condition_steps`)."""
        b, _, s = seq.shape
        if s > self.config.block_size:
            raise ValueError(f"{s} steps exceed the context of {self.config.block_size} positions")
        x = torch.cat([self.start_embedding(class_labels, b), self.embed(seq[..., :-1])], dim=1)
        if cond_steps is not None:
            x = x + cond_steps[:, :s]
        return self.transform(x, torch.arange(s, device=seq.device))

    def forward(
        self, seq: Tensor, class_labels: Tensor | None = None, cond: Tensor | None = None
    ) -> Tensor:
        """Next-step logits of a grid: ``seq: (B, K, S)`` -> ``(B, K, S, V)``.

        ``logits[:, k, s]`` predicts ``seq[:, k, s]`` from the start token and steps ``< s``
        (and the conditioning grid ``cond`` of a conditioned prior).
        """
        steps = self.condition_steps(cond, seq.shape[0])
        return self.logits(self.hidden_states(seq, class_labels, steps))

    def _drop_classes(self, class_labels: Tensor | None, batch: int) -> Tensor | None:
        if class_labels is None or not self.training or self.config.class_dropout == 0:
            return class_labels
        drop = torch.rand(batch, device=class_labels.device) < self.config.class_dropout
        return torch.where(drop, torch.full_like(class_labels, self.null_class), class_labels)

    def nll_sums(
        self,
        codes: Tensor,
        class_labels: Tensor | None = None,
        count_from: int = 0,
        cond: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Summed negative log-likelihood (nats) and code counts per codebook.

        Args:
            codes: ``(B, K, T)`` in ``0..V-1`` with ``pattern.num_steps(T) <= block_size``.
            class_labels: ``(B,)`` or None; dropped to the null class as in :meth:`loss`.
            count_from: count only the codes of frames ``>= count_from`` (the rest is context).
            cond: the conditioning grid ``(B, Kc, h, w)`` of a conditioned prior, whose codes
                must then be whole grids (``T = H' W'``).

        Returns:
            ``(K,)`` NLL sums and ``(K,)`` counts. Only slots holding a code count: delay edges
            and layout padding are never part of the loss.
        """
        b, k, t = codes.shape
        if t == 0:
            raise ValueError("codes have no frames")
        if int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size:
            raise ValueError(f"codes must be in 0..{self.config.codebook_size - 1}")
        pattern = self.config.pattern
        steps = self.condition_steps(cond, b)
        if steps is not None and t != math.prod(self.config.latent_shape):
            raise ValueError(
                f"a conditioned prior scores whole {tuple(self.config.latent_shape)} grids, "
                f"got {t} frames"
            )
        seq, mask = pattern.build(codes)  # (B, K, S), (K, S)
        if count_from:
            frame = torch.arange(t, device=codes.device).expand(1, k, t)
            mask = mask & (pattern.build(frame)[0][0] >= count_from)
        hidden = self.hidden_states(seq, self._drop_classes(class_labels, b), steps)  # (B, S, D)
        # each head only where its codebook has codes: a flatten grid has one code per step,
        # so this is K times less head work and memory than logits for every slot
        weight = self.head.weight.view(k, self.config.codebook_size, -1)
        sums = [
            F.cross_entropy(
                (hidden[:, m] @ w.T).flatten(0, 1).float(), seq[:, i, m].flatten(), reduction="sum"
            )
            for i, (m, w) in enumerate(zip(mask, weight, strict=True))
        ]
        return torch.stack(sums), mask.sum(dim=1) * b

    def per_codebook_nll(
        self, codes: Tensor, class_labels: Tensor | None = None, cond: Tensor | None = None
    ) -> Tensor:
        """Mean negative log-likelihood (nats) of each codebook: ``codes: (B, K, T)`` -> ``(K,)``."""
        sums, counts = self.nll_sums(codes, class_labels, cond=cond)
        return sums / counts

    def loss(
        self, codes: Tensor, class_labels: Tensor | None = None, cond: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Training loss of ``codes: (B, K, T)`` under the config's pattern.

        Args:
            codes: integer codes in ``0..V-1``.
            class_labels: ``(B,)`` long or None; in training mode each label is replaced by
                the null class with probability ``class_dropout``.
            cond: the conditioning grid of a conditioned prior (:meth:`nll_sums`).

        Returns:
            loss: scalar, the mean cross-entropy (nats) over all codes (every codebook has
                the same number of codes, so it is the mean of the next value).
            per_codebook: ``(K,)`` detached cross-entropy of each codebook (nats).
        """
        per_codebook = self.per_codebook_nll(codes, class_labels, cond)
        return per_codebook.mean(), per_codebook.detach()

    @property
    def context_frames(self) -> int:
        """The most frames whose steps fit in the trained context (``block_size``)."""
        pattern = self.config.pattern
        first = pattern.num_steps(1)
        return max(0, (self.config.block_size - first) // pattern.steps_per_frame + 1)

    @torch.no_grad()
    def score(
        self,
        codes: Tensor,
        class_labels: Tensor | None = None,
        frame_rate: float = 75.0,
        cond: Tensor | None = None,
    ) -> dict[str, Any]:
        """Bits of ``codes: (B, K, T)`` under the prior (eval mode, no grad), any T.

        Codes longer than :attr:`context_frames` (W) are scored in windows of W frames
        advancing by W // 2, each window counting only the frames the previous one did not
        reach, so every code after the first window is predicted from at least W // 2 frames
        of context (the strided-perplexity recipe of Hugging Face's perplexity guide).

        Returns:
            ``bits_per_codebook`` (list of K floats), ``bits_per_frame`` (their sum),
            ``kbps`` (bits per frame x ``frame_rate`` / 1000), ``raw_kbps`` (K log2 V x
            frame rate / 1000, the uncompressed rate) and ``num_frames`` (B T).
        """
        t, window = codes.shape[-1], self.context_frames
        if t == 0 or window == 0:
            raise ValueError("codes have no frames" if t == 0 else "the context holds no frame")
        stride = max(1, window // 2)
        was_training = self.training
        self.eval()
        try:
            sums = counts = 0
            begin, done = 0, 0
            while done < t:
                end = min(begin + window, t)
                s, c = self.nll_sums(
                    codes[..., begin:end], class_labels, count_from=done - begin, cond=cond
                )
                sums, counts, done = sums + s, counts + c, end
                begin += stride
        finally:
            self.train(was_training)
        bits = sums / counts / math.log(2)
        k, v = self.config.num_codebooks, self.config.codebook_size
        per_frame = float(bits.sum())
        return {
            "bits_per_codebook": [float(x) for x in bits],
            "bits_per_frame": per_frame,
            "kbps": per_frame * frame_rate / 1000,
            "raw_kbps": k * math.log2(v) * frame_rate / 1000,
            "num_frames": int(codes.shape[0] * t),
        }

    # -- generation and export --------------------------------------------------------------
    # ``prior.generate(num_frames, prompt=..., ...)``: the function of generate.py, whose
    # first argument is the model, bound as a method (one signature, one docstring)
    generate = generate

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors``; see :mod:`audiotok.prior.io`."""
        return save_pretrained(self, directory)
