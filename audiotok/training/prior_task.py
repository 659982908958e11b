"""Training a token prior (:mod:`audiotok.prior`) on token shards with the common trainer.

A step draws windows of code frames ``(B, K, T)`` from :class:`~audiotok.data.shards.
TokenShards` (never across a file end), computes the prior's cross-entropy under its
pattern, and back-propagates it. Logged per step and at validation: ``loss`` (nats per
code), ``bits_per_frame`` (the sum over codebooks, bits), ``bits/k`` per codebook and, at
validation, ``kbps`` (bits per frame x frame rate) next to ``raw_kbps`` (K log2 V x frame
rate): the bitrate an entropy coder driven by the prior would need against the raw stream.

Image token shards (``audiotok tokenize IMAGES --model M``) hold one row per image: a window
is a whole image's raster-scanned grid (``H' W'`` frames), ``bits_per_image`` replaces kbps
(against the uniform ``H' W' K log2 V``), and when the prior has ``num_classes > 0`` each
image comes with its class label (rows without one train the null class), dropped to the
null class with the prior's ``class_dropout`` for classifier-free guidance. The same task
trains the masked (MaskGIT) prior, whose loss is over masked codes only.

Two-level (VQ-VAE-2) shards hold packed rows on the top grid. A top prior reads the first
row(s); a *conditioned* prior (``cond_codebooks > 0``, the bottom prior) gets each image split
into the top grid (its ``cond``) and the unfolded bottom grid (the codes it models), and its
bits per image count the bottom grid's codes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from audiotok.data.shards import TokenShards, TokenWindows
from audiotok.errors import UserError
from audiotok.training.config import TrainConfig
from audiotok.training.ddp import DistInfo, unwrap
from audiotok.training.tasks import StepOutput

__all__ = ["PriorTask", "PriorTaskBuilder"]

_LN2 = math.log(2.0)


class PriorTask:
    """Cross-entropy of a prior over code windows; no discriminator.

    Args:
        model: a prior with ``loss(codes) -> (loss, per_codebook_nats)`` (DDP-wrapped or not).
        frame_rate: code frames per second of the tokenizer (for kbps).
    """

    discriminator: nn.Module | None = None

    def __init__(
        self,
        model: nn.Module,
        frame_rate: float,
        tokenizer_id: str = "",
        latent_shape: tuple[int, ...] = (),
        window_frames: int = 0,
    ) -> None:
        self.generator = model
        self.window_frames = int(window_frames)
        self.frame_rate = float(frame_rate)
        self.tokenizer_id = tokenizer_id
        self.latent_shape = tuple(latent_shape)
        prior = unwrap(model)
        self.raw_bits = prior.config.num_codebooks * math.log2(prior.config.codebook_size)
        # a causal prior's loss is a likelihood; a masked prior's is over masked codes only
        self.likelihood = hasattr(prior, "context_frames")

    def _split(
        self, batch: Tensor | tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """``(codes (B, K, T), labels (B,) or None, extra loss arguments)``; a missing label
        (-1) is the null class. A conditioned prior (VQ-VAE-2's bottom prior) reads packed
        two-level rows: the top grid becomes ``cond``, the unfolded bottom grid the codes."""
        prior = unwrap(self.generator)
        labels = None
        if isinstance(batch, list | tuple):
            batch, labels = batch
            if prior.config.num_classes > 0:
                labels = labels.long().where(labels >= 0, prior.config.num_classes)
            else:
                labels = None
        if getattr(prior.config, "cond_codebooks", 0):
            codes, cond = prior.split_packed(batch)
            return codes, labels, {"cond": cond}
        return batch[:, : prior.config.num_codebooks], labels, {}

    def adversarial(self, step: int) -> bool:
        """Priors train without an adversary."""
        return False

    def _bits(self, per_codebook: Tensor) -> dict[str, Tensor]:
        bits = per_codebook.detach() / _LN2
        out = {"bits_per_frame": bits.sum()}
        if self.latent_shape and self.likelihood:
            out["bits_per_image"] = bits.sum() * math.prod(self.latent_shape)
        out.update({f"bits/{k}": b for k, b in enumerate(bits)})
        return out

    def generator_step(self, batch: Tensor | tuple[Tensor, Tensor], step: int) -> StepOutput:
        """``batch: (B, K, T)`` codes or ``(codes, labels (B,))``; loss, ``backward()``, bits
        per codebook."""
        prior = unwrap(self.generator)
        codes, labels, extra = self._split(batch)
        loss, per_codebook = prior.loss(codes, labels, **extra)
        loss.backward()
        return StepOutput({"loss": loss.detach(), "total": loss.detach()}, self._bits(per_codebook))

    def discriminator_step(self, batch: Tensor, out: StepOutput, step: int) -> dict[str, Tensor]:
        """Nothing to do."""
        return {}

    def validation_step(
        self, batch: Tensor | tuple[Tensor, Tensor]
    ) -> tuple[dict[str, float], None]:
        """Dev windows: loss, bits per frame and codebook, kbps under the prior vs raw (or
        bits per image vs the uniform bound)."""
        prior = unwrap(self.generator)
        import torch

        codes, labels, extra = self._split(batch)
        with torch.no_grad():
            loss, per_codebook = prior.loss(codes, labels, **extra)
        metrics = {k: float(v) for k, v in self._bits(per_codebook).items()}
        metrics["loss"] = float(loss)
        if self.latent_shape:
            metrics["uniform_bits_per_image"] = self.raw_bits * math.prod(self.latent_shape)
        else:
            metrics["kbps"] = metrics["bits_per_frame"] * self.frame_rate / 1000.0
            metrics["raw_kbps"] = self.raw_bits * self.frame_rate / 1000.0
        return metrics, None

    def state_dict(self) -> dict[str, Any]:
        """The tokenizer the codes came from, the image grid and the training window in
        frames (``export`` writes them into the prior's config: a context longer than the
        window would use positions that were never trained)."""
        return {
            "tokenizer_id": self.tokenizer_id,
            "latent_shape": list(self.latent_shape),
            "window_frames": self.window_frames,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class PriorTaskBuilder:
    """Priors: token shards in ``data.train`` (``data.dev``, or the same folder's dev
    split), windows of ``data.segment_seconds`` at the tokens' frame rate."""

    def build_discriminator(self, config: TrainConfig, model: nn.Module) -> nn.Module | None:
        return None

    def _shards(self, folder: str, split: str) -> TokenShards:
        return TokenShards(folder, split=split)

    def _frames(self, config: TrainConfig, shards: TokenShards, model: nn.Module) -> int:
        if getattr(model.config, "cond_codebooks", 0):
            # packed two-level rows: a window is one whole image (its top grid's cells)
            return math.prod(model.config.cond_shape)
        if shards.info.modality == "image":
            frames = shards.info.frames_per_item
            if frames is None:
                raise UserError(
                    f"{shards.dir}: images of several code grid sizes; a prior trains on one "
                    "(tokenize images of one size)"
                )
            limit = getattr(model, "context_frames", None)
            if limit is None:
                limit = model.config.max_positions - 1
            if frames > int(limit):
                raise UserError(
                    f"{shards.dir}: images of {frames} codes; the prior's context holds {limit}"
                )
            return frames
        frames = max(1, round(config.data.segment_seconds * shards.info.frame_rate))
        limit = getattr(model, "context_frames", None)
        if limit is not None and frames > int(limit):
            raise UserError(
                f"data.segment_seconds={config.data.segment_seconds} is {frames} frames; the "
                f"prior's context holds {limit} (raise model.config.block_size or shorten it)"
            )
        return frames

    def _check(self, shards: TokenShards, model: nn.Module) -> None:
        info, cfg = shards.info, model.config
        if info.codebook_size != cfg.codebook_size or info.num_codebooks < cfg.num_codebooks:
            raise UserError(
                f"{shards.dir}: tokens are {info.num_codebooks} x {info.codebook_size}, the "
                f"prior models {cfg.num_codebooks} x {cfg.codebook_size}"
            )
        if getattr(cfg, "cond_codebooks", 0):
            ratio, rows = cfg.cond_ratio, cfg.packed_rows
            if info.latent_shape != tuple(cfg.cond_shape) or info.num_codebooks != rows:
                raise UserError(
                    f"{shards.dir}: {info.num_codebooks} code rows on {info.latent_shape} grids; "
                    f"the conditioned prior reads {rows} packed rows ({cfg.cond_codebooks} top + "
                    f"{ratio}x{ratio}x{cfg.num_codebooks} bottom) on {tuple(cfg.cond_shape)} "
                    "grids (tokenize with the two-level model)"
                )
            return
        wanted = tuple(getattr(cfg, "latent_shape", ()))
        if wanted and wanted != info.latent_shape:
            raise UserError(
                f"{shards.dir}: code grids {info.latent_shape}, the prior models {wanted} "
                "(model.config.latent_shape)"
            )

    def build_task(self, config: TrainConfig, model: nn.Module, discriminator: Any, autocast: Any):
        d = config.data
        if not d.train:
            raise UserError(
                "no training data: set data.train to a token folder (audiotok tokenize)"
            )
        info = TokenShards(d.train).info
        wanted = unwrap(model).config.tokenizer_id
        if wanted and wanted != info.model_id:
            raise UserError(
                f"{d.train}: tokens of model {info.model_id}, but the recipe's prior is for "
                f"{wanted} (model.config.tokenizer_id)"
            )
        shape = info.latent_shape if info.modality == "image" else ()
        window = self._frames(config, TokenShards(d.train), unwrap(model))
        cfg = unwrap(model).config
        if getattr(cfg, "cond_codebooks", 0):  # it models the bottom grid, whole
            shape = tuple(cfg.latent_shape)
            window = math.prod(shape)
        return PriorTask(model, info.frame_rate, info.model_id, shape, window)

    def build_datasets(
        self, config: TrainConfig, model: nn.Module, dist: DistInfo
    ) -> tuple[Dataset, Dataset | None]:
        d, v = config.data, config.validation
        train = self._shards(d.train, "train")
        self._check(train, model)
        frames = self._frames(config, train, model)
        labels = "label" if unwrap(model).config.num_classes > 0 else None
        train_set = TokenWindows(
            train,
            frames,
            num_examples=d.examples_per_epoch,
            seed=config.seed,
            train=True,
            label_field=labels,
        )
        dev_set = None
        if v.every > 0 and dist.is_main:
            dev = self._shards(d.dev or d.train, "dev")
            if len(dev):
                self._check(dev, model)
                dev_set = TokenWindows(dev, frames, train=False, label_field=labels)
        return train_set, dev_set

    def write_samples(self, out_dir: Path, refs: Tensor, recs: Tensor, model: nn.Module) -> list:
        return []  # generation needs a tokenizer to listen to; `audiotok generate` does that

    def throughput(self, config: TrainConfig) -> dict[str, float]:
        return {"windows": float(config.data.batch_size)}
