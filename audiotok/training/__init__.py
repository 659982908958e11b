"""Training: YAML recipes to strict dataclasses, the trainer loop, checkpoints and DDP."""
