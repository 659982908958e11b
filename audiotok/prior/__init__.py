"""Token priors over integer codes ``(B, K, T)`` and codebook interleaving patterns (planned)."""
