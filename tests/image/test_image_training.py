"""A tiny VQ-VAE learns 8x8 digits (scikit-learn's ``load_digits``, offline) in 100 steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiotok.image import ImageVQVAE, ImageVQVAEConfig, ssim


def _digits() -> torch.Tensor:
    datasets = pytest.importorskip("sklearn.datasets")
    images = datasets.load_digits().images  # (1797, 8, 8) in [0, 16]
    return torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0


def test_tiny_vqvae_learns_digits_and_uses_many_codes() -> None:
    torch.manual_seed(0)
    data = _digits()
    train, test = data[:1500], data[1500:]
    model = ImageVQVAE(
        ImageVQVAEConfig(
            channels=1,
            hidden=16,
            channel_mult=(1,),
            num_res_blocks=1,
            res_hidden=8,
            latent_dim=8,
            quantizer={"type": "ema", "codebook_size": 32, "kmeans_iters": 4},
        )
    )

    def held_out_mse() -> float:
        model.eval()
        with torch.no_grad():
            return F.mse_loss(model(test).image, test).item()

    model.train()(train[:256])  # k-means init on a first batch
    before = held_out_mse()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        batch = train[torch.randint(0, len(train), (64,), generator=gen)]
        model.train()
        out = model(batch)
        loss = F.mse_loss(out.image, batch) + out.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_mse()
    assert after < 0.5 * before, (before, after)
    model.eval()
    codes = model.encode(test)
    assert codes.shape == (len(test), 1, 4, 4)
    assert codes.unique().numel() > 16  # over half of the 32 codes
    assert ssim(model(test).image, test) > 0.4
