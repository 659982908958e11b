"""Classifier Fréchet distance: a sample-quality score on a small classifier's features.

FID (Heusel et al., arXiv:1706.08500) compares the Gaussian statistics of Inception-v3
features of real and generated images. Inception's weights are a download, and its features
mean little on 28x28 greyscale clothes, so this module trains its own small CNN on the
dataset's train split and computes the same Fréchet distance on the CNN's penultimate
features. **It is not FID**: its values are comparable only with the same classifier
(same data, seed and steps), and it is reported as "classifier Fréchet distance".

- :class:`SmallCNN`: two conv blocks and a 128-unit feature layer (``features``) before a
  linear classifier.
- :func:`train_classifier` / :func:`accuracy`: a few minutes on one CPU for Fashion-MNIST.
- :func:`frechet_distance`: ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, the trace
  of the square root computed from the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric,
  so no complex parts from ``scipy.linalg.sqrtm``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SmallCNN",
    "accuracy",
    "feature_stats",
    "features",
    "frechet_distance",
    "load_classifier",
    "save_classifier",
    "train_classifier",
]


class SmallCNN(nn.Module):
    """``(B, C, H, W)`` images in ``[-1, 1]`` -> class logits; :meth:`features` gives the
    ``(B, feature_dim)`` layer before the classifier.

    Args:
        channels: image channels C.
        num_classes: classes.
        size: H = W of the images (a multiple of 4).
        feature_dim: width of the feature layer.
    """

    def __init__(
        self, channels: int = 1, num_classes: int = 10, size: int = 28, feature_dim: int = 128
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * (size // 4) ** 2, feature_dim)
        self.out = nn.Linear(feature_dim, num_classes)
        self.drop = nn.Dropout(0.25)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(B, feature_dim)`` (after the ReLU)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes)``."""
        return self.out(self.drop(self.features(x)))


def train_classifier(
    images: Tensor,
    labels: Tensor,
    *,
    steps: int = 1500,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
) -> SmallCNN:
    """Train a :class:`SmallCNN` on ``images: (N, C, H, W)`` in ``[-1, 1]`` with ``labels:
    (N,)`` (Adam, cosine learning rate, random batches); returned in eval mode."""
    torch.manual_seed(seed)
    n, c, h, _ = images.shape
    model = SmallCNN(c, int(labels.max()) + 1, h)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def features(model: SmallCNN, images: Tensor, batch_size: int = 1000) -> np.ndarray:
    """Features ``(N, feature_dim)`` float64 of ``images: (N, C, H, W)`` in ``[-1, 1]``
    (clamped to that range first, as a generated image would be shown)."""
    model.eval()
    parts = [model.features(x.clamp(-1, 1)) for x in images.split(batch_size)]
    return torch.cat(parts).double().numpy()


@torch.no_grad()
def accuracy(model: SmallCNN, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Share of ``images`` whose predicted class is the label."""
    model.eval()
    preds = torch.cat([model(x).argmax(1) for x in images.split(batch_size)])
    return float((preds == labels).float().mean())


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of features ``(N, D)``."""
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need features (N >= 2, D), got {feats.shape}")
    return feats.mean(0), np.cov(feats, rowvar=False)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fit to features ``a: (N, D)`` and ``b: (M, D)``."""
    mu_a, cov_a = feature_stats(a)
    mu_b, cov_b = feature_stats(b)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T  # S_a^(1/2)
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def save_classifier(model: SmallCNN, path: str | os.PathLike) -> Path:
    """Write the weights as safetensors (the shape is in the tensors)."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: t.contiguous() for k, t in model.state_dict().items()}, str(p))
    return p


def load_classifier(path: str | os.PathLike) -> SmallCNN:
    """A :class:`SmallCNN` from :func:`save_classifier`'s file, in eval mode."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    channels = state["conv1.weight"].shape[1]
    num_classes, feature_dim = state["out.weight"].shape
    size = int(round((state["fc.weight"].shape[1] / 64) ** 0.5)) * 4
    model = SmallCNN(channels, num_classes, size, feature_dim)
    model.load_state_dict(state, strict=True)
    return model.eval()
