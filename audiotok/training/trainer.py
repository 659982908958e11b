"""The training loop behind ``audiotok train``: one loop for single-process and DDP runs.

Per step: the task's generator step (forward, losses, backward), gradient clipping, an AdamW
step and a learning-rate step (linear warm-up then cosine or constant), then, once adversarial training
has started, the discriminator's step with its own optimiser and schedule. bf16 autocast is
used on CUDA, and on CPUs with native bf16 (quantizers run in fp32 by themselves).

Reproducibility: the data order is a function of the seed (a
:class:`~audiotok.training.sampler.ResumableSampler` seeded with ``seed + epoch``, the
dataset's own ``set_epoch`` crops, DataLoader worker seeds from a generator seeded the same
way), and a checkpoint stores everything else (weights, optimisers, schedulers, RNG states
of every rank, epoch and batches consumed), so a resumed run continues exactly where the
checkpoint was taken. Validation saves and restores the RNG states around itself, so it
never changes the training trajectory.

Over 400 lines on purpose: the loop, its checkpoint state and resume are one state machine;
what differs per modality is built in :mod:`audiotok.training.build`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from audiotok.errors import UserError
from audiotok.registry import build_model
from audiotok.training import checkpoint as ckpt
from audiotok.training.build import task_builder
from audiotok.training.config import TrainConfig, load_config
from audiotok.training.ddp import (
    DistInfo,
    all_gather_object,
    barrier,
    cleanup_distributed,
    init_distributed,
    unwrap,
    wrap_ddp,
)
from audiotok.training.logging import MetricsLogger, window_code_stats
from audiotok.training.optim import WarmupSchedule, build_optimizer
from audiotok.training.sampler import ResumableSampler
from audiotok.training.validation import run_validation, to_device

__all__ = ["TrainResult", "Trainer", "build_model", "train", "train_recipe"]


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or stopped) run reports.

    Attributes:
        run_dir: the run folder.
        step: the last completed step.
        checkpoint: the last checkpoint written (None on non-main ranks).
        metrics: the last logged training metrics.
    """

    run_dir: Path
    step: int
    checkpoint: Path | None
    metrics: dict[str, float]


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX-BF16 or AVX-512 BF16; Linux flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def _seed_all(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def freeze_modules(model: nn.Module, names: tuple[str, ...]) -> list[nn.Module]:
    """``freeze``: stop gradients to the named submodules (dotted paths) and return them.

    Raises:
        UserError: a name that is not a submodule, or a freeze that leaves nothing to train.
    """
    frozen: list[nn.Module] = []
    known = dict(model.named_modules())
    for name in names:
        module = known.get(name) if name else None
        if module is None:
            children = ", ".join(n for n, _ in model.named_children())
            raise UserError(f"freeze: the model has no submodule {name!r} (it has: {children})")
        module.requires_grad_(False)
        frozen.append(module)
    if names and not any(p.requires_grad for p in model.parameters()):
        raise UserError(f"freeze: {list(names)} leaves no parameter to train")
    return frozen


def set_frozen_modes(frozen: list[nn.Module]) -> None:
    """Frozen modules run in eval mode (no codebook updates or restarts, no dropout), except
    that a residual quantizer's own flag stays on so it still draws quantizer dropout (its
    stages, which hold the codebooks, stay in eval mode)."""
    for module in frozen:
        was_training = module.training
        module.eval()
        if was_training:
            for sub in module.modules():
                if hasattr(sub, "stage_counts"):  # a residual quantizer: dropout only
                    sub.training = True


class Trainer:
    """Builds everything a recipe describes and runs the loop.

    Args:
        config: the validated recipe.
        resume: ``False`` (fresh run; refuses a ``run_dir`` that has checkpoints), ``True``
            (the latest checkpoint of ``run_dir``) or a checkpoint path.
        dist: this process's place in a DDP job (default: from torchrun's variables).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool | str | os.PathLike = False,
        dist: DistInfo | None = None,
    ) -> None:
        self.cfg = config
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.dist = dist or init_distributed(config.device)
        self.device = self.dist.device
        self.run_dir = Path(config.run_dir or "runs/default")
        state = self._resume_state(resume)
        _seed_all(config.seed)  # identical initial weights on every rank
        self.builder = task_builder(config.model.family)
        model = build_model(config.model.family, config.model.config).to(self.device)
        disc = self.builder.build_discriminator(config, model)
        if disc is not None:
            disc = disc.to(self.device)
        self.frozen = freeze_modules(model, tuple(config.freeze))
        dcfg = config.discriminator
        o = config.optim
        self.opt_g, self.sched_g = build_optimizer(
            model.parameters(),
            lr=o.lr,
            betas=o.betas,
            weight_decay=o.weight_decay,
            schedule=self._schedule(),
        )
        self.opt_d = self.sched_d = None
        if disc is not None:
            self.opt_d, self.sched_d = build_optimizer(
                disc.parameters(),
                lr=dcfg.lr if dcfg.lr is not None else o.lr,
                betas=dcfg.betas if dcfg.betas is not None else o.betas,
                weight_decay=dcfg.weight_decay,
                schedule=self._schedule(offset=dcfg.start_step),
            )
        self.step = self.epoch = self.batch_in_epoch = 0
        if state is not None:
            self._load_state(state, model, disc)
        elif config.init_from:
            self._init_weights(config.init_from, model, disc)
        self.model = wrap_ddp(model, self.dist, find_unused_parameters=True)
        self.disc = wrap_ddp(disc, self.dist) if disc is not None else None
        self.precision = self._precision()
        self.task = self.builder.build_task(config, self.model, self.disc, self._autocast)
        if state is not None:
            self.task.load_state_dict(state.get("task", {}))
        self.train_set, self.dev_set = self.builder.build_datasets(config, model, self.dist)
        self.sampler = ResumableSampler(
            len(self.train_set),
            seed=config.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        if self.sampler.shard_size < config.data.batch_size:
            raise UserError(
                f"an epoch has {self.sampler.shard_size} examples per process, fewer than "
                f"data.batch_size={config.data.batch_size} (add files or set "
                "data.examples_per_epoch)"
            )
        if state is not None:
            self._restore_rng(state)
        else:
            _seed_all(config.seed + self.dist.rank)
        self.last_checkpoint: Path | None = None

    # -- setup ------------------------------------------------------------------------------
    def _schedule(self, offset: int = 0) -> WarmupSchedule:
        """The recipe's schedule; the discriminator's counts its own steps, which start at
        ``discriminator.start_step`` (``offset``)."""
        o = self.cfg.optim
        span = max(o.max_steps - offset, 1)
        return WarmupSchedule(o.warmup_steps, span, o.schedule, o.min_lr_ratio)

    def _precision(self) -> str:
        p = self.cfg.precision
        if self.device.type == "cuda":
            if p == "auto":
                return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
            return p
        # CPU: with AMX / AVX-512 BF16 bf16 autocast makes a generator step 1.3-2.2x faster;
        # without them it is emulated and ~3x *slower* (measured), so "auto" checks the CPU.
        if p == "auto":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        return p

    def _autocast(self) -> contextlib.AbstractContextManager:
        # STFTs, losses and quantizer distances run in fp32 inside (they cast themselves)
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _resume_state(self, resume: bool | str | os.PathLike) -> dict[str, Any] | None:
        if resume is False or resume is None:
            if ckpt.latest_checkpoint(self.run_dir) is not None:
                raise UserError(
                    f"{self.run_dir} already has checkpoints: pass --resume to continue that "
                    "run, or choose another --run-dir"
                )
            return None
        path = ckpt.latest_checkpoint(self.run_dir) if resume is True else Path(resume)
        if path is None:
            raise UserError(f"nothing to resume: {self.run_dir} has no checkpoints")
        return ckpt.load_checkpoint(path, map_location="cpu")

    def _load_state(self, state: dict[str, Any], model: nn.Module, disc: nn.Module | None) -> None:
        saved = state["config"].get("model", {})
        if saved.get("family") != self.cfg.model.family:
            raise UserError(
                f"checkpoint is a {saved.get('family')!r} model, the recipe a "
                f"{self.cfg.model.family!r} one"
            )
        ckpt.load_state_strict(
            model, state["model"], "checkpoint does not match the recipe's model"
        )
        if disc is not None and state.get("discriminator") is not None:
            ckpt.load_state_strict(
                disc, state["discriminator"], "checkpoint does not match the recipe's discriminator"
            )
        self.opt_g.load_state_dict(state["optimizer"])
        self.sched_g.load_state_dict(state["scheduler"])
        if self.opt_d is not None and state.get("disc_optimizer") is not None:
            self.opt_d.load_state_dict(state["disc_optimizer"])
            self.sched_d.load_state_dict(state["disc_scheduler"])
        # the recipe, not the checkpoint, decides the schedule, the learning rates and the
        # betas (e.g. a longer --max-steps, or a fine-tuning phase at a lower lr); with the
        # same recipe every value below equals the saved one, so resume stays exact
        o, dcfg = self.cfg.optim, self.cfg.discriminator
        self.sched_g.retune(self._schedule(), o.lr, o.betas)
        if self.sched_d is not None:
            self.sched_d.retune(
                self._schedule(dcfg.start_step),
                dcfg.lr if dcfg.lr is not None else o.lr,
                dcfg.betas if dcfg.betas is not None else o.betas,
            )
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])

    def _init_weights(self, source: str, model: nn.Module, disc: nn.Module | None) -> None:
        """``init_from``: trained weights for a fresh run (see :class:`TrainConfig`)."""
        from audiotok.hub import resolve_model

        family = self.cfg.model.family
        path = Path(source)
        if path.is_file() or (path.is_dir() and ckpt.latest_checkpoint(path) is not None):
            found = path if path.is_file() else ckpt.latest_checkpoint(path)
            state = ckpt.load_checkpoint(found, map_location="cpu")
            saved = state["config"].get("model", {}).get("family")
            if saved != family:
                raise UserError(f"init_from: {found} is a {saved!r} model, the recipe {family!r}")
            weights, disc_weights, what = state["model"], state.get("discriminator"), found
        else:
            from audiotok.hub import load_pretrained, read_pretrained_info

            try:
                folder = resolve_model(source)
                info = read_pretrained_info(folder)
            except UserError as exc:
                raise UserError(f"init_from: {exc}") from None
            if info.family != family:
                raise UserError(
                    f"init_from: {folder} is a {info.family!r} model, the recipe {family!r}"
                )
            trained = load_pretrained(folder)  # any registered family, priors included
            weights, disc_weights, what = trained.state_dict(), None, folder
            from audiotok.training.export import DISCRIMINATOR_NAME

            if disc is not None and (folder / DISCRIMINATOR_NAME).is_file():
                from safetensors.torch import load_file

                saved = load_file(str(folder / DISCRIMINATOR_NAME))
                if ckpt.state_dict_mismatch(disc.state_dict(), saved):
                    warnings.warn(
                        f"init_from: {folder / DISCRIMINATOR_NAME} does not fit the recipe's "
                        "discriminator; it starts fresh",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                else:
                    disc_weights = saved
        ckpt.load_state_strict(model, weights, f"init_from: {what} does not fit the recipe's model")
        if disc is not None and disc_weights is not None:
            ckpt.load_state_strict(
                disc, disc_weights, f"init_from: {what}'s discriminator does not fit the recipe's"
            )

    def _restore_rng(self, state: dict[str, Any]) -> None:
        states = state.get("rng") or []
        if len(states) == self.dist.world_size:
            ckpt.set_rng_state(states[self.dist.rank])
        else:  # a different world size cannot continue the same random streams
            _seed_all(self.cfg.seed + self.dist.rank + 7919 * self.step)

    def _loader(self) -> DataLoader:
        d = self.cfg.data
        self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch * d.batch_size)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        g = torch.Generator()
        g.manual_seed(self.cfg.seed + self.epoch)  # worker seeds; keeps the global RNG untouched
        return DataLoader(
            self.train_set,
            batch_size=d.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=d.num_workers,
            generator=g,
            pin_memory=self.device.type == "cuda",
        )

    # -- one step ---------------------------------------------------------------------------
    def _clip(self, module: nn.Module, max_norm: float | None) -> torch.Tensor | None:
        if max_norm is None or max_norm <= 0:
            return None
        return nn.utils.clip_grad_norm_(module.parameters(), max_norm)

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One generator (+ discriminator) update on ``batch: (B, C, T)``; returns metrics."""
        batch = to_device(batch, self.device)
        self.model.train()
        set_frozen_modes(self.frozen)
        if self.disc is not None:
            self.disc.train()
        self.opt_g.zero_grad(set_to_none=True)
        out = self.task.generator_step(batch, self.step)
        grad_norm = self._clip(self.model, self.cfg.optim.grad_clip)
        self.opt_g.step()
        self.sched_g.step()
        logs = {**out.losses, **out.metrics}
        if grad_norm is not None:
            logs["grad_norm"] = grad_norm.detach()
        if self.opt_d is not None:
            if self.task.adversarial(self.step):
                self.opt_d.zero_grad(set_to_none=True)
                logs.update(self.task.discriminator_step(batch, out, self.step))
                d_norm = self._clip(self.disc, self.cfg.discriminator.grad_clip)
                if d_norm is not None:
                    logs["disc_grad_norm"] = d_norm.detach()
                self.opt_d.step()
                self.sched_d.step()
        self.step += 1
        return logs

    # -- saving -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint of the current step (every rank must call it: RNG states are
        gathered from all ranks)."""
        rng = all_gather_object(ckpt.rng_state())
        disc = unwrap(self.disc) if self.disc is not None else None
        return {
            "format": "audiotok-training-checkpoint",
            "version": 1,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "model": unwrap(self.model).state_dict(),
            "discriminator": disc.state_dict() if disc is not None else None,
            "optimizer": self.opt_g.state_dict(),
            "scheduler": self.sched_g.state_dict(),
            "disc_optimizer": self.opt_d.state_dict() if self.opt_d is not None else None,
            "disc_scheduler": self.sched_d.state_dict() if self.sched_d is not None else None,
            "task": self.task.state_dict(),
            "rng": rng,
            "world_size": self.dist.world_size,
            "config": self.cfg.to_dict(),
        }

    def save(self) -> Path | None:
        """Write this step's checkpoint (main rank) and prune old ones."""
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        path = ckpt.save_checkpoint(state, ckpt.checkpoint_path(self.run_dir, self.step))
        ckpt.prune_checkpoints(self.run_dir, self.cfg.checkpoint.keep_last)
        self.last_checkpoint = path
        return path

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None) -> TrainResult:
        """Train until ``optim.max_steps`` (or ``stop_at``, which leaves the schedule alone).

        Returns:
            :class:`TrainResult` of the last step.
        """
        cfg = self.cfg
        end = min(cfg.optim.max_steps, stop_at) if stop_at is not None else cfg.optim.max_steps
        main = self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(
                yaml.safe_dump(cfg.to_dict(), sort_keys=False)
            )
        logger = MetricsLogger(
            self.run_dir,
            total_steps=end,
            start_step=self.step,
            enabled=main,
            tensorboard=cfg.log.tensorboard,
            progress=cfg.log.progress,
        )
        if hasattr(self.train_set, "describe"):
            logger.message(f"steps {self.step}-{end} on {self.train_set.describe()}")
        window: dict[str, Any] = {}
        n_window, t_window, last = 0, time.perf_counter(), {}
        saved_at = self.step
        per_step = {k: v * self.dist.world_size for k, v in self.builder.throughput(cfg).items()}
        budget, t_start, stop = cfg.optim.max_seconds, time.perf_counter(), False
        try:
            while self.step < end and not stop:
                for batch in self._loader():
                    logs = self.train_step(batch)
                    self.batch_in_epoch += 1
                    for k, v in logs.items():
                        window[k] = window[k] + v if k in window else v
                    n_window += 1
                    stop = self.step >= end or self._time_is_up(t_start, budget)
                    if self.step % cfg.log.every == 0 or stop:
                        elapsed = max(time.perf_counter() - t_window, 1e-9)
                        last = self._summarise(window, n_window)
                        last["lr"] = self.sched_g.get_last_lr()[0]
                        last["steps_per_s"] = n_window / elapsed
                        for unit, amount in per_step.items():
                            last[f"{unit}_per_s"] = n_window * amount / elapsed
                        last["epoch"] = self.epoch
                        logger.log(self.step, "train", last)
                        keys = ("total", "mel", "disc", "kbps", "usage", "bits_per_frame")
                        logger.progress(
                            self.step, last["steps_per_s"], {k: last[k] for k in keys if k in last}
                        )
                        window, n_window, t_window = {}, 0, time.perf_counter()
                    if stop and self.step < end:
                        logger.message(
                            f"step {self.step}: optim.max_seconds ({budget:g} s) reached; "
                            "--resume continues"
                        )
                    v = cfg.validation
                    if v.every > 0 and (self.step % v.every == 0 or stop):
                        self._validate(logger)
                    if self.step % cfg.checkpoint.every == 0 or stop:
                        self.save()
                        saved_at = self.step
                    if stop:
                        break
                else:
                    self.epoch += 1
                    self.batch_in_epoch = 0
        except KeyboardInterrupt:
            if not self.dist.distributed and self.step > saved_at:
                self.save()  # the last completed step, for --resume
            raise
        finally:
            logger.close()
        return TrainResult(self.run_dir, self.step, self.last_checkpoint, last)

    def _time_is_up(self, t_start: float, budget: float | None) -> bool:
        """``optim.max_seconds`` has passed (every rank decides alike: under DDP the ranks
        compare clocks at logging steps only, one small collective each)."""
        if budget is None:
            return False
        if not self.dist.distributed:
            return time.perf_counter() - t_start >= budget
        if self.step % self.cfg.log.every:
            return False
        return max(all_gather_object(time.perf_counter() - t_start)) >= budget

    def _summarise(self, window: dict[str, Any], n: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in window.items():
            if k == "code_counts":
                out.update(window_code_stats(v))
            elif torch.is_tensor(v) and v.numel() == 1:
                out[k] = float(v) / n
        return out

    def _validate(self, logger: MetricsLogger) -> None:
        if self.dist.is_main and self.dev_set is not None:
            saved = ckpt.rng_state()
            try:
                metrics = run_validation(
                    self.task,
                    self.dev_set,
                    batch_size=self.cfg.data.batch_size,
                    num_batches=self.cfg.validation.num_batches,
                    num_audio_samples=self.cfg.validation.num_audio_samples,
                    out_dir=self.run_dir / "samples" / f"step_{self.step}",
                    device=self.device,
                    write_samples=lambda out, refs, recs: self.builder.write_samples(
                        out, refs, recs, unwrap(self.model)
                    ),
                )
            finally:
                ckpt.set_rng_state(saved)
            logger.log(self.step, "val", metrics)
            logger.message(
                f"step {self.step} val " + " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            )
        barrier()


def train(
    config: TrainConfig,
    *,
    resume: bool | str | os.PathLike = False,
    stop_at: int | None = None,
) -> TrainResult:
    """Run a recipe in this process (joining a DDP job when torchrun started it).

    Args:
        config: the recipe.
        resume: ``True`` for ``run_dir``'s latest checkpoint, or a checkpoint path.
        stop_at: stop after this step without changing the LR schedule (tests, time limits).
    """
    dist = init_distributed(config.device)
    try:
        return Trainer(config, resume=resume, dist=dist).fit(stop_at=stop_at)
    finally:
        cleanup_distributed()


def train_recipe(
    recipe: str | os.PathLike,
    overrides: list[str] | None = None,
    *,
    resume: bool = False,
    resume_from: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    max_steps: int | None = None,
) -> TrainResult:
    """What ``audiotok train`` does: load the recipe with overrides, then :func:`train`.

    ``run_dir`` and ``max_steps`` are shorthands for ``--set run_dir=...`` and
    ``--set optim.max_steps=...`` (the latter also sets the cosine schedule's length).
    """
    config = load_config(recipe, list(overrides or []))
    if run_dir is not None:
        config = dataclasses.replace(config, run_dir=str(run_dir))
    if max_steps is not None:
        if max_steps < 1:
            raise UserError(f"--max-steps must be >= 1, got {max_steps}")
        config = dataclasses.replace(
            config, optim=dataclasses.replace(config.optim, max_steps=int(max_steps))
        )
    target: bool | str | os.PathLike = resume_from if resume_from is not None else resume
    return train(config, resume=target)
