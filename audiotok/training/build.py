"""What a recipe builds, per modality, apart from the loop that trains it.

The :class:`~audiotok.training.trainer.Trainer` owns what every run has (optimisers and
schedules, DDP, checkpoints, logging, the resumable data order); a :class:`TaskBuilder`
owns what depends on the kind of model: the discriminators, the
:class:`~audiotok.training.tasks.Task` that computes a step's losses, the train/dev datasets
and how validation samples are written. The builder is chosen by the model family's
``modality`` (``"audio"`` for the codecs; image VQ-VAEs and token priors add theirs here).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn
from torch.utils.data import Dataset

from audiotok.errors import UserError
from audiotok.registry import family_class
from audiotok.training.config import TrainConfig
from audiotok.training.ddp import DistInfo
from audiotok.training.tasks import CodecTask, Discriminators, Task

__all__ = ["TaskBuilder", "AudioTaskBuilder", "TASK_BUILDERS", "task_builder"]

Autocast = Callable[[], contextlib.AbstractContextManager]


class TaskBuilder(Protocol):
    """The modality-specific half of a training run."""

    def build_discriminator(self, config: TrainConfig, model: nn.Module) -> nn.Module | None:
        """The discriminator(s) the recipe asks for, or None."""
        ...

    def build_task(
        self,
        config: TrainConfig,
        model: nn.Module,
        discriminator: nn.Module | None,
        autocast: Autocast,
    ) -> Task:
        """The task over the (possibly DDP-wrapped) modules."""
        ...

    def build_datasets(
        self, config: TrainConfig, model: nn.Module, dist: DistInfo
    ) -> tuple[Dataset, Dataset | None]:
        """``(train_set, dev_set)``; the dev set only on the main rank, when validating."""
        ...

    def write_samples(
        self, out_dir: Path, refs: Tensor, recs: Tensor, model: nn.Module
    ) -> list[Path]:
        """Write a few validation references and reconstructions under ``out_dir``."""
        ...

    def throughput(self, config: TrainConfig) -> dict[str, float]:
        """Units of data per step for the log (e.g. ``{"audio_s": seconds}``)."""
        ...


class AudioTaskBuilder:
    """Audio codecs: MS-STFT / multi-period discriminators, :class:`CodecTask`, audio
    datasets (folders, file lists, manifests or ``synthetic``), WAV + spectrogram samples."""

    def build_discriminator(self, config: TrainConfig, model: nn.Module) -> nn.Module | None:
        d = config.discriminator
        if not d.enabled or (d.msstft is None and d.mpd is None):
            return None
        try:
            return Discriminators.build(d.msstft, d.mpd, model.channels)
        except (ValueError, TypeError) as exc:
            raise UserError(f"bad discriminator settings: {exc}") from None

    def build_task(
        self,
        config: TrainConfig,
        model: nn.Module,
        discriminator: nn.Module | None,
        autocast: Autocast,
    ) -> Task:
        d = config.discriminator
        sample_rate = _unwrapped(model).sample_rate
        crop = d.segment_seconds
        return CodecTask(
            model,
            discriminator,
            config.loss,
            start_step=d.start_step,
            disc_segment=round(crop * sample_rate) if crop is not None else None,
            autocast=autocast,
        )

    def build_datasets(
        self, config: TrainConfig, model: nn.Module, dist: DistInfo
    ) -> tuple[Dataset, Dataset | None]:
        from audiotok.data import build_audio_dataset
        from audiotok.data.synthetic import is_synthetic

        d, v = config.data, config.validation
        sample_rate, channels = model.sample_rate, model.channels
        sr, ch = d.sample_rate or sample_rate, d.channels or channels
        if sr != sample_rate or ch != channels:
            raise UserError(
                f"data is {sr} Hz / {ch} ch but the model is {sample_rate} Hz / "
                f"{channels} ch (data.sample_rate / data.channels must match the model)"
            )
        if not d.train:
            raise UserError(
                "no training data: set data.train (folder, file list, manifest or synthetic)"
            )
        extra: dict[str, Any] = {}
        if d.examples_per_epoch:
            extra["num_examples"] = d.examples_per_epoch
        if d.shares is not None:
            if is_synthetic(d.train):
                raise UserError("data.shares mixes the files of a manifest; synthetic has none")
            extra.update(shares=d.shares, mix_by=d.mix_by)
        with warnings.catch_warnings():
            if not dist.is_main:  # every rank checks the files, rank 0 reports them
                warnings.simplefilter("ignore", RuntimeWarning)
            train_set = build_audio_dataset(
                d.train,
                sr,
                ch,
                d.segment_seconds,
                train=True,
                preload=d.preload,
                seed=config.seed,
                loudness_db=d.loudness_db,
                **extra,
            )
        dev_set = None
        if d.dev and v.every > 0 and dist.is_main:
            dev_set = build_audio_dataset(
                d.dev,
                sr,
                ch,
                v.segment_seconds or d.segment_seconds,
                train=False,
                loudness_db=d.loudness_db,
                max_files=v.num_batches * d.batch_size,
            )
        return train_set, dev_set

    def write_samples(
        self, out_dir: Path, refs: Tensor, recs: Tensor, model: nn.Module
    ) -> list[Path]:
        from audiotok.training.validation import write_audio_samples

        return write_audio_samples(out_dir, refs, recs, int(_unwrapped(model).sample_rate))

    def throughput(self, config: TrainConfig) -> dict[str, float]:
        return {"audio_s": config.data.batch_size * config.data.segment_seconds}


def _unwrapped(model: nn.Module) -> Any:
    return getattr(model, "module", model)


def _builders() -> dict[str, TaskBuilder]:
    from audiotok.training.image_task import ImageTaskBuilder
    from audiotok.training.prior_task import PriorTaskBuilder

    return {"audio": AudioTaskBuilder(), "image": ImageTaskBuilder(), "prior": PriorTaskBuilder()}


#: modality -> builder; a new modality registers its builder here.
TASK_BUILDERS: dict[str, TaskBuilder] = _builders()


def task_builder(family: str) -> TaskBuilder:
    """The builder for a model family (by its class's ``modality``).

    Raises:
        UserError: the family's modality cannot be trained yet.
    """
    modality = family_class(family).modality  # type: ignore[attr-defined]
    builder = TASK_BUILDERS.get(modality)
    if builder is None:
        raise UserError(
            f"model family {family!r} ({modality}) cannot be trained by audiotok train yet"
        )
    return builder
