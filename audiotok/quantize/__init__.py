"""Modality-agnostic quantizers on channel-last tensors ``(B, ..., D)``.

This package imports torch, einops and the standard library only; it knows nothing of audio
or images, so that audio codecs, image VQ-VAEs and token priors all share it.
"""

from audiotok.quantize.base import IdentityQuantizer, Quantizer, QuantizerOutput

__all__ = ["IdentityQuantizer", "Quantizer", "QuantizerOutput"]
