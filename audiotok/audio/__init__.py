"""Audio model families: 1-D VQ-VAE, SoundStream-style codec, discriminators and losses."""
