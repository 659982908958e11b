"""Tiny codec builders shared by the audio tests (hop 6 or 4, a few channels, 16-entry codebooks)."""

from __future__ import annotations

from typing import Any

from audiotok.audio import AudioVQVAE, AudioVQVAEConfig, SoundStream, SoundStreamConfig


def residual_spec(num_codebooks: int = 3, dropout: float = 0.5) -> dict[str, Any]:
    """A small residual quantizer whose stages are plain VQ codebooks of 16 entries."""
    return {
        "type": "residual",
        "num_codebooks": num_codebooks,
        "dropout": dropout,
        "stage": {"type": "vq", "codebook_size": 16},
    }


def tiny_soundstream(decoder: str = "seanet", causal: bool = False, **kw: Any) -> SoundStream:
    cfg = {
        "ratios": (2, 3),
        "encoder_channels": 4,
        "dilations": (1, 3),
        "latent_dim": 8,
        "decoder": decoder,
        "decoder_channels": 4,
        "istft_hidden": 16,
        "istft_layers": 2,
        "causal": causal,
        "quantizer": residual_spec(),
    }
    cfg.update(kw)
    return SoundStream(SoundStreamConfig(**cfg))


def tiny_vqvae(causal: bool = False, **kw: Any) -> AudioVQVAE:
    cfg = {
        "ratios": (2, 2),
        "hidden": 8,
        "residual_hidden": 4,
        "num_residual": 1,
        "latent_dim": 4,
        "causal": causal,
        "quantizer": {"type": "vq", "codebook_size": 16},
    }
    cfg.update(kw)
    return AudioVQVAE(AudioVQVAEConfig(**cfg))


BUILDERS = {
    "soundstream-seanet": lambda: tiny_soundstream("seanet"),
    "soundstream-istft": lambda: tiny_soundstream("istft"),
    "soundstream-seanet-causal": lambda: tiny_soundstream(
        "seanet", causal=True, activation="snake"
    ),
    "soundstream-istft-causal": lambda: tiny_soundstream("istft", causal=True),
    "soundstream-spectral": lambda: tiny_soundstream(
        "istft", encoder="spectral", encoder_hidden=16, encoder_layers=2
    ),
    "vqvae": lambda: tiny_vqvae(),
    "vqvae-causal": lambda: tiny_vqvae(causal=True),
}
