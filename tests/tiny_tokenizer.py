"""One tiny audio tokenizer for the tests above the models (8 kHz, hop 8, 3 x 16 codes)."""

from __future__ import annotations

import torch

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.tokenizer import AudioTokenizer


def tiny_tokenizer(seed: int = 0) -> AudioTokenizer:
    """A seeded, eval-mode SoundStream of a few hundred parameters behind an AudioTokenizer."""
    torch.manual_seed(seed)
    config = SoundStreamConfig(
        sample_rate=8000,
        ratios=(2, 4),
        encoder_channels=4,
        latent_dim=8,
        istft_hidden=8,
        istft_layers=1,
        quantizer={
            "type": "residual",
            "num_codebooks": 3,
            "stage": {"type": "vq", "codebook_size": 16},
        },
    )
    return AudioTokenizer(SoundStream(config).eval())
