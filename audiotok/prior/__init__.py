"""Token priors over integer codes ``(B, K, T)``: patterns, LM vocabulary, GPT, MaskGIT.

This package sees integer codes only, never a codec (ARCHITECTURE.md): a tokenizer's
``encode`` gives the codes, a prior models them, the tokenizer's ``decode`` plays them.

* :mod:`~audiotok.prior.patterns`: codes ``(B, K, T)`` <-> step grids (parallel, delay,
  flatten, coarse-first), exact round trips, loss masks.
* :mod:`~audiotok.prior.vocab`: :class:`LMVocab` and ``to_lm_tokens`` / ``from_lm_tokens`` for
  external language models.
* :mod:`~audiotok.prior.gpt`: the causal prior (:class:`GPT`, :class:`GPTConfig`), with
  ``loss``, ``score`` and ``generate`` (:mod:`~audiotok.prior.generate`,
  :mod:`~audiotok.prior.sampling`; the function is not re-exported here so that
  ``audiotok.prior.generate`` stays the module).
* :mod:`~audiotok.prior.masked`: the MaskGIT / SoundStorm prior for any code grid.
* :mod:`~audiotok.prior.condition`: a coarser code grid as conditioning (VQ-VAE-2's bottom
  prior given the top codes: ``GPTConfig(cond_codebooks=...)``), and the packed two-level
  layout (``split_packed_levels`` / ``pack_levels``).
* :mod:`~audiotok.prior.score`: unigram and count-bigram baselines.
* :mod:`~audiotok.prior.io` / :mod:`~audiotok.prior.pretrained`: ``save_pretrained`` /
  ``load_prior`` (config.json + model.safetensors).

Example (codes from any tokenizer: ``codes = tok.encode(wav, sample_rate)``, ``(B, K, T)``)::

    from audiotok.prior import GPT, GPTConfig, LMVocab, delay, load_prior, to_lm_tokens

    prior = GPT(GPTConfig(num_codebooks=8, codebook_size=1024, pattern=delay(8)))
    loss, per_codebook = prior.loss(codes)                  # train on raw codes
    new = prior.generate(750, prompt=codes[..., :225], temperature=0.9, top_k=250)
    prior.score(codes, frame_rate=75.0)                     # bits per codebook/frame, kbps
    prior.save_pretrained("prior/"); prior = load_prior("prior/")
    ids = to_lm_tokens(codes, delay(8), LMVocab(8, 1024, offset=32000))  # for another LM
"""

from audiotok.prior.condition import GridCondition, pack_levels, split_packed_levels
from audiotok.prior.gpt import GPT, GPTConfig
from audiotok.prior.io import save_pretrained
from audiotok.prior.layers import weight_decay_groups
from audiotok.prior.masked import MASK_CODE, MaskedConfig, MaskedPrior
from audiotok.prior.patterns import (
    EMPTY_CODE,
    Pattern,
    coarse_first,
    delay,
    flatten,
    get_pattern,
    parallel,
)
from audiotok.prior.pretrained import load_prior
from audiotok.prior.sampling import apply_cfg, sample, top_k_filter, top_p_filter
from audiotok.prior.score import bigram_bits, unigram_bits
from audiotok.prior.vocab import LMVocab, from_lm_tokens, to_lm_tokens

__all__ = [
    "EMPTY_CODE",
    "GPT",
    "GPTConfig",
    "GridCondition",
    "LMVocab",
    "MASK_CODE",
    "MaskedConfig",
    "MaskedPrior",
    "Pattern",
    "apply_cfg",
    "bigram_bits",
    "coarse_first",
    "delay",
    "flatten",
    "from_lm_tokens",
    "get_pattern",
    "load_prior",
    "pack_levels",
    "parallel",
    "sample",
    "save_pretrained",
    "split_packed_levels",
    "to_lm_tokens",
    "top_k_filter",
    "top_p_filter",
    "unigram_bits",
    "weight_decay_groups",
]
