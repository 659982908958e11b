"""Image VQ-VAEs trained through the shared quantizer core (planned; interface in ARCHITECTURE.md)."""
