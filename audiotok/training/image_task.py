"""Training an image VQ-VAE (:mod:`audiotok.image`) with the common trainer.

The objective is :class:`~audiotok.image.vqgan.VQGANLoss` (VQGAN, arXiv:2012.09841): L1 (and
optionally SSIM, focal-frequency, LPIPS) reconstruction terms plus the quantizer's loss, and,
when ``loss.image.gan_weight > 0``, a PatchGAN whose hinge loss reaches the codec only after
its warm-up (``disc_start``, ``generator_delay``, ``generator_ramp``), scaled by taming's
adaptive weight at the decoder's last layer. The PatchGAN is the run's discriminator: the
trainer gives it its own optimiser, schedule, DDP wrapper and checkpoint slot.

Data: ``data.train`` is any image source :func:`audiotok.data.images.open_image_source` reads
(a folder, list, manifest, ``*-ubyte[.gz]``, CIFAR batches, ``.npy``/``.npz``);
``data.dev`` another, or else the ``val`` split of the same source (by file key).
``data.image_size`` resizes and crops (centre for dev, random for training). Validation logs
PSNR, SSIM, L1 and code usage, and writes a PNG grid of originals above reconstructions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from audiotok.errors import UserError
from audiotok.training.config import TrainConfig
from audiotok.training.ddp import DistInfo, unwrap
from audiotok.training.tasks import StepOutput, code_counts

__all__ = ["ImageTask", "ImageTaskBuilder"]


def _images(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, list | tuple) else batch


class ImageTask:
    """Generator and discriminator steps of an image codec under :class:`VQGANLoss`.

    Args:
        model: an :class:`~audiotok.image.base.ImageCodec` (possibly DDP-wrapped).
        discriminator: the loss's PatchGAN (possibly DDP-wrapped) or None.
        loss: the :class:`~audiotok.image.vqgan.VQGANLoss` (its ``discriminator`` is the
            unwrapped PatchGAN).
        autocast: mixed-precision context factory.
    """

    def __init__(self, model: nn.Module, discriminator: nn.Module | None, loss: Any, autocast: Any):
        self.generator, self.discriminator, self.loss, self.autocast = (
            model,
            discriminator,
            loss,
            autocast,
        )
        self.codec = unwrap(model)

    def adversarial(self, step: int) -> bool:
        """True once the PatchGAN trains (``disc_start``)."""
        return self.discriminator is not None and self.loss.config.warmup.discriminator_active(step)

    def generator_step(self, batch: Any, step: int) -> StepOutput:
        """Forward, VQGAN generator loss, ``backward()``; code counts for usage logging."""
        images = _images(batch)
        with self.autocast():
            out = self.generator(images)
        out.image = out.image.float()
        loss, logs = self.loss.generator_loss(images, out, step, last_layer=self.codec.last_layer)
        loss.backward()
        logs = {k: v.detach().float() for k, v in logs.items()}
        logs["total"] = loss.detach()
        codes = out.codes.flatten(2)  # (B, K, H' W')
        counts = code_counts(codes, self.codec.codebook_size)
        return StepOutput(logs, {"code_counts": counts}, out.image.detach())

    def discriminator_step(self, batch: Any, out: StepOutput, step: int) -> dict[str, Tensor]:
        """The PatchGAN's hinge loss on originals vs the step's reconstructions."""
        if out.fake is None:
            return {}
        loss, logs = self.loss.discriminator_loss(_images(batch), out.fake, step)
        if loss.requires_grad:
            loss.backward()
        return {"disc": loss.detach(), **{k: v.detach() for k, v in logs.items()}}

    @torch.no_grad()
    def validation_step(self, batch: Any) -> tuple[dict[str, float], Tensor]:
        """PSNR (dB, on [0, 1] pixels), SSIM, L1, and the share of codes used in the batch."""
        from audiotok.image.ssim import ssim

        images = _images(batch)
        out = self.codec(images)
        recon = out.image.float().clamp(-1, 1)
        mse = (recon - images).square().flatten(1).mean(1)  # on [-1, 1]: 4x the [0, 1] MSE
        psnr = 10 * torch.log10(4.0 / mse.clamp_min(1e-10))
        used = torch.unique(out.codes).numel() / max(1, self.codec.codebook_size)
        metrics = {
            "psnr": float(psnr.mean()),
            "ssim": float(ssim(images, recon, data_range=2.0)),
            "l1": float((recon - images).abs().mean()),
            "code_share": float(used),
        }
        return metrics, recon

    def state_dict(self) -> dict[str, Any]:
        """No state beyond the modules'."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class ImageTaskBuilder:
    """Image codecs: :class:`VQGANLoss` from ``loss.image``, image datasets, PNG grids."""

    def _loss_config(self, config: TrainConfig) -> Any:
        from audiotok.image.vqgan import VQGANLossConfig

        try:
            cfg = VQGANLossConfig.from_dict(dict(config.loss.image))
        except ValueError as e:
            raise UserError(f"bad loss.image: {e}") from None
        if not config.discriminator.enabled and cfg.gan_weight > 0:
            cfg = VQGANLossConfig.from_dict({**cfg.to_dict(), "gan_weight": 0.0})
        return cfg

    def build_discriminator(self, config: TrainConfig, model: nn.Module) -> nn.Module | None:
        from audiotok.image.vqgan import VQGANLoss

        return VQGANLoss(self._loss_config(config), channels=model.channels).discriminator

    def build_task(self, config: TrainConfig, model: nn.Module, discriminator: Any, autocast: Any):
        import dataclasses

        from audiotok.image.vqgan import VQGANLoss

        cfg = self._loss_config(config)
        codec = unwrap(model)
        # the loss drives the run's own PatchGAN (built above, with its optimiser and DDP),
        # so it is constructed without one of its own and handed that one
        loss = VQGANLoss(dataclasses.replace(cfg, gan_weight=0.0), channels=codec.channels)
        loss.config = cfg
        loss.discriminator = unwrap(discriminator) if discriminator is not None else None
        loss.to(next(codec.parameters()).device)
        return ImageTask(model, discriminator, loss, autocast)

    def build_datasets(
        self, config: TrainConfig, model: nn.Module, dist: DistInfo
    ) -> tuple[Dataset, Dataset | None]:
        from audiotok.data.images import ImageDataset

        d, v = config.data, config.validation
        if not d.train:
            raise UserError("no training data: set data.train to an image source")
        common = {"channels": model.channels, "size": d.image_size, "seed": config.seed}
        split = "all" if d.dev else "train"
        train_set = ImageDataset(d.train, crop="random", flip=True, split=split, **common)
        dev_set = None
        if v.every > 0 and dist.is_main:
            dev_set = ImageDataset(d.dev or d.train, split="all" if d.dev else "val", **common)
        return train_set, dev_set

    def write_samples(self, out_dir: Path, refs: Tensor, recs: Tensor, model: nn.Module) -> list:
        from PIL import Image

        out_dir.mkdir(parents=True, exist_ok=True)
        n = refs.shape[0]
        rows = torch.cat([refs.float().cpu(), recs.float().cpu()])  # (2N, C, H, W)
        grid = ((rows.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        c, h, w = grid.shape[1:]
        grid = grid.reshape(2, n, c, h, w).permute(0, 3, 1, 4, 2).reshape(2 * h, n * w, c)
        arr = grid.numpy()
        image = Image.fromarray(arr[..., 0] if c == 1 else arr)
        path = out_dir / "grid.png"
        image.save(path)
        return [path]

    def throughput(self, config: TrainConfig) -> dict[str, float]:
        return {"images": float(config.data.batch_size)}
