"""Modality-agnostic quantizers on channel-last tensors ``(B, ..., D)``.

This package imports torch, einops and the standard library only; it knows nothing of audio
or images, so that audio codecs, image VQ-VAEs and token priors all share it.
"""

from audiotok.quantize.base import IdentityQuantizer, Quantizer, QuantizerOutput
from audiotok.quantize.build import build_quantizer
from audiotok.quantize.ema import (
    DeadCodeRestart,
    EMAVectorQuantizer,
    KMeansInit,
    RelativeDeadCodeRestart,
)
from audiotok.quantize.fsq import FSQ
from audiotok.quantize.gumbel import GumbelQuantizer
from audiotok.quantize.product import GroupedResidualQuantizer, ProductQuantizer
from audiotok.quantize.residual import ResidualQuantizer
from audiotok.quantize.vq import VectorQuantizer

__all__ = [
    "FSQ",
    "GroupedResidualQuantizer",
    "GumbelQuantizer",
    "ProductQuantizer",
    "DeadCodeRestart",
    "RelativeDeadCodeRestart",
    "EMAVectorQuantizer",
    "IdentityQuantizer",
    "KMeansInit",
    "Quantizer",
    "QuantizerOutput",
    "ResidualQuantizer",
    "VectorQuantizer",
    "build_quantizer",
]
