"""Training tasks: what one step computes, separate from the loop that runs it.

The trainer knows nothing about codecs: it asks a :class:`Task` for the modules to optimise
and calls :meth:`Task.generator_step` (forward, losses and the backward pass),
:meth:`Task.discriminator_step` and :meth:`Task.validation_step`. :class:`CodecTask`
implements this for audio codecs (SoundStream arXiv:2107.03312, EnCodec arXiv:2210.13438):

* generator: multi-scale mel L1, multi-resolution STFT, the phase-derivative loss,
  optional time-domain L1, the quantizer's commitment/codebook loss, and once ``start_step`` is reached the hinge
  adversarial loss and discriminator feature matching; optionally through the loss
  :class:`~audiotok.training.balancer.Balancer`;
* discriminator: hinge loss on real audio versus detached reconstructions;
* metrics: per-codebook code counts (the trainer turns them into usage and perplexity over
  its logging window) and the effective bitrate (``kbps``) under quantizer dropout.

An image task only has to implement the same protocol.

Over 400 lines as one file: the codec task's generator step, its loss wiring, validation and
the discriminator step share one loss configuration and one set of loss modules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from audiotok.audio.discriminators import MultiPeriodDiscriminator, MultiScaleSTFTDiscriminator
from audiotok.audio.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    PhaseDerivativeLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from audiotok.errors import UserError
from audiotok.eval import metrics as eval_metrics
from audiotok.training.balancer import Balancer
from audiotok.training.config import LossConfig
from audiotok.training.ddp import unwrap
from audiotok.training.latent_probes import (
    check_pitch_resolution,
    harmonic_ripple,
    participation_ratio,
    pitch_head_loss,
    residual_ratios,
    unexplained_fraction,
)

__all__ = ["StepOutput", "Task", "CodecTask", "Discriminators", "code_counts"]

#: log-magnitude floor of the spectrum loss (a magnitude of 1e-5, the frames' own floor)
SPECTRUM_LOG_FLOOR = math.log(1e-5)


@dataclass
class StepOutput:
    """What a generator step hands back to the trainer.

    Attributes:
        losses: name -> detached scalar (``total`` included).
        metrics: name -> detached scalar, plus ``code_counts`` ``(K, codebook_size)``.
        fake: the detached reconstruction ``(B, C, T)`` for the discriminator step.
    """

    losses: dict[str, Tensor]
    metrics: dict[str, Tensor] = field(default_factory=dict)
    fake: Tensor | None = None


class Task(Protocol):
    """What the trainer needs from a task (audio codec now, image VQ-VAE later)."""

    generator: nn.Module
    discriminator: nn.Module | None

    def adversarial(self, step: int) -> bool:
        """True when the discriminator trains at ``step``."""
        ...

    def generator_step(self, batch: Tensor, step: int) -> StepOutput:
        """Forward, losses and ``backward()`` for the generator (no optimiser step)."""
        ...

    def discriminator_step(self, batch: Tensor, out: StepOutput, step: int) -> dict[str, Tensor]:
        """Forward, loss and ``backward()`` for the discriminator."""
        ...

    def validation_step(self, batch: Tensor) -> tuple[dict[str, float], Tensor]:
        """Metrics and the reconstruction of a dev batch (no gradients)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Task state that must survive a resume (e.g. balancer averages)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


class Discriminators(nn.Module):
    """Several discriminators seen as one: logits and feature maps concatenated.

    Args:
        discriminators: modules with ``forward(wav) -> (list of logits, list of feature lists)``.
    """

    def __init__(self, discriminators: list[nn.Module]) -> None:
        super().__init__()
        if not discriminators:
            raise ValueError("at least one discriminator is needed")
        self.discriminators = nn.ModuleList(discriminators)

    def forward(self, wav: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        """``wav: (B, C, T)`` -> ``(logits, features)`` over every sub-discriminator."""
        logits: list[Tensor] = []
        features: list[list[Tensor]] = []
        for disc in self.discriminators:
            lg, ft = disc(wav)
            logits += list(lg)
            features += [list(f) for f in ft]
        return logits, features

    @classmethod
    def build(
        cls, msstft: dict[str, Any] | None, mpd: dict[str, Any] | None, channels: int
    ) -> Discriminators:
        """MS-STFT and/or multi-period discriminators from keyword dicts (``None``: left out)."""
        parts: list[nn.Module] = []
        for kind, kwargs in (
            (MultiScaleSTFTDiscriminator, msstft),
            (MultiPeriodDiscriminator, mpd),
        ):
            if kwargs is None:
                continue
            kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
            parts.append(kind(channels=channels, **kw))
        return cls(parts)


def _split(tensors: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Halves of batch-concatenated ``[real; fake]`` outputs."""
    real, fake = zip(*(t.chunk(2, dim=0) for t in tensors), strict=True)
    return list(real), list(fake)


def code_counts(codes: Tensor, codebook_size: int) -> Tensor:
    """Per-codebook code counts ``(K, codebook_size)`` of ``codes (B, K, T')``; ``-1`` skipped."""
    k = codes.shape[1]
    flat = codes.transpose(0, 1).reshape(k, -1)  # (K, B*T')
    valid = flat >= 0
    index = flat.clamp(min=0) + torch.arange(k, device=codes.device)[:, None] * codebook_size
    counts = torch.zeros(k * codebook_size, device=codes.device, dtype=torch.long)
    counts.index_add_(0, index[valid], torch.ones_like(index[valid]))
    return counts.view(k, codebook_size)


class CodecTask:
    """Losses and metrics of a neural audio codec trained with (optional) discriminators.

    Args:
        model: an :class:`~audiotok.audio.base.AudioCodec`, possibly DDP-wrapped.
        discriminator: a :class:`Discriminators` (possibly DDP-wrapped) or ``None``.
        loss: the recipe's loss weights.
        start_step: first step with adversarial losses and discriminator updates.
        disc_segment: when set, the discriminators see a random crop of this many samples
            of each real / reconstructed pair (one offset per item, the same for both).
        autocast: a context manager factory for mixed precision (bf16 on CUDA).
    """

    def __init__(
        self,
        model: nn.Module,
        discriminator: nn.Module | None,
        loss: LossConfig,
        *,
        start_step: int = 0,
        disc_segment: int | None = None,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.generator = model
        self.disc_segment = disc_segment
        self.discriminator = discriminator
        self.cfg = loss
        self.start_step = start_step
        self.autocast = autocast
        codec = unwrap(model)
        self.codec = codec
        device = next(codec.parameters()).device
        self.mel = MultiScaleMelLoss(codec.sample_rate, **_kwargs(loss.mel_options)).to(device)
        self.stft = MultiResolutionSTFTLoss(**_kwargs(loss.stft_options)).to(device)
        self.phase = PhaseDerivativeLoss(**_kwargs(loss.phase_options)).to(device)
        weights = {
            "mel": loss.mel,
            "stft": loss.stft,
            "phase": loss.phase,
            "time_l1": loss.time_l1,
            "adversarial": loss.adversarial,
            "feature_matching": loss.feature_matching,
        }
        self.weights = weights
        self.balancer = Balancer(weights) if loss.balancer else None
        if loss.spectrum > 0:
            probe = torch.zeros(1, codec.channels, codec.hop_length, device=device)
            if codec.spectrum_target(probe) is None:
                raise UserError(
                    "loss.spectrum needs a decoder that predicts STFT frames (decoder: istft)"
                )
        if loss.pitch > 0:
            if getattr(codec, "pitch_head", None) is None:
                raise UserError(
                    "loss.pitch needs a codec with a pitch head (model.config.pitch_head: width)"
                )
            try:
                check_pitch_resolution(codec.hop_length, codec.sample_rate)
            except ValueError as exc:
                raise UserError(f"loss.pitch: {exc}") from None
        self.bits_per_code = math.log2(codec.codebook_size) if codec.codebook_size > 1 else 0.0

    def adversarial(self, step: int) -> bool:
        """True when the discriminator trains (and the generator sees it) at ``step``."""
        return self.discriminator is not None and step >= self.start_step

    def _crop(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """The same random ``disc_segment`` window of each ``(B, C, T)`` pair (all of it
        when shorter); offsets come from the global RNG, which checkpoints restore."""
        seg, length = self.disc_segment, real.shape[-1]
        if seg is None or length <= seg:
            return real, fake
        starts = torch.randint(0, length - seg + 1, (real.shape[0],)).tolist()

        def window(x: Tensor) -> Tensor:  # (B, C, seg)
            return torch.stack([x[i, :, s : s + seg] for i, s in enumerate(starts)])

        return window(real), window(fake)

    def _reconstruction_losses(self, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        if self.cfg.mel > 0:
            losses["mel"] = self.mel(fake, real)
        if self.cfg.stft > 0:
            losses["stft"] = self.stft(fake, real)
        if self.cfg.phase > 0:
            losses["phase"] = self.phase(fake, real)
        if self.cfg.time_l1 > 0:
            losses["time_l1"] = F.l1_loss(fake, real)
        return losses

    def generator_step(self, batch: Tensor, step: int) -> StepOutput:
        """Forward the codec, compute every generator loss and back-propagate their sum.

        Args:
            batch: ``(B, C, T)`` real audio.
            step: the global step (decides whether adversarial losses are on).
        """
        with self.autocast():
            out = self.generator(batch)
        fake = out.audio.float()  # (B, C, T); losses run in fp32
        losses = self._reconstruction_losses(fake, batch)
        if self.adversarial(step) and (self.cfg.adversarial > 0 or self.cfg.feature_matching > 0):
            disc = unwrap(self.discriminator)  # no DDP here: its gradients are not wanted
            real_in, fake_in = self._crop(batch, fake)
            # the real half only gives feature-matching targets: without a graph for it the
            # backward pass through the discriminators does half the work
            with torch.no_grad(), self.autocast():
                _, real_feats = disc(real_in)
            disc.requires_grad_(False)
            try:
                with self.autocast():
                    fake_logits, fake_feats = disc(fake_in)
            finally:
                disc.requires_grad_(True)
            fake_logits = [lg.float() for lg in fake_logits]
            real_feats = [[t.float() for t in fs] for fs in real_feats]
            fake_feats = [[t.float() for t in fs] for fs in fake_feats]
            if self.cfg.adversarial > 0:
                losses["adversarial"] = hinge_generator_loss(fake_logits)
            if self.cfg.feature_matching > 0:
                losses["feature_matching"] = feature_matching_loss(
                    real_feats, fake_feats, relative=self.cfg.feature_matching_relative
                )
        # terms that do not flow through the waveform: kept out of the balancer
        direct = out.loss.float() * self.cfg.commitment
        spectrum = self._spectrum_loss(out.spectrum, batch) if self.cfg.spectrum > 0 else None
        if spectrum is not None:
            direct = direct + self.cfg.spectrum * spectrum
        harmonics = None
        if self.cfg.latent_harmonics > 0 and out.quantized is not None:
            target = harmonic_ripple(
                self.codec._pad(batch.float()), self.codec.hop_length, self.codec.sample_rate
            )
            harmonics = unexplained_fraction(out.quantized, target)
            direct = direct + self.cfg.latent_harmonics * harmonics
        pitch = None
        if self.cfg.pitch > 0 and out.quantized is not None:
            pitch = pitch_head_loss(self.codec, out.quantized, batch)
            direct = direct + self.cfg.pitch * pitch
        weighted = sum((self.weights[k] * v for k, v in losses.items()), fake.new_zeros(()))
        total = weighted + direct
        if self.balancer is not None and losses:
            grad, _ = self.balancer.gradient(losses, fake)
            if direct.requires_grad:
                torch.autograd.backward([fake, direct], [grad, torch.ones_like(direct)])
            else:
                fake.backward(grad)
        else:
            total.backward()
        logged = {k: v.detach() for k, v in losses.items()}
        logged["commitment"] = out.loss.detach().float()
        if spectrum is not None:
            logged["spectrum"] = spectrum.detach()
        if harmonics is not None:
            logged["latent_harmonics"] = harmonics.detach()
        if pitch is not None:
            logged["pitch"] = pitch.detach()
        logged["total"] = total.detach()
        return StepOutput(logged, self._metrics(out.codes), out.audio.detach().float())

    def _spectrum_loss(self, predicted: Tensor | None, batch: Tensor) -> Tensor:
        """L1 between the decoder's predicted log-magnitude frames and the input's, in the
        decoder's framing (APNet's amplitude loss, arXiv:2305.07952). Bins below the
        target's floor cost nothing for being quieter still."""
        if predicted is None:
            raise UserError("loss.spectrum needs a decoder that predicts STFT frames (istft)")
        with torch.no_grad():
            target = self.codec.spectrum_target(self.codec._pad(batch.float()))
            if target is not None:
                target = target.clamp(min=SPECTRUM_LOG_FLOOR)
        if target is None:
            raise UserError("loss.spectrum needs a decoder that predicts STFT frames (istft)")
        return F.l1_loss(predicted.float().clamp(min=SPECTRUM_LOG_FLOOR), target)

    def discriminator_step(self, batch: Tensor, out: StepOutput, step: int) -> dict[str, Tensor]:
        """Hinge loss of the discriminators on ``batch`` vs the step's reconstruction.

        Returns:
            ``{"disc": loss}`` after ``backward()``; empty before ``start_step``.
        """
        if not self.adversarial(step) or out.fake is None:
            return {}
        real_in, fake_in = self._crop(batch, out.fake)
        with self.autocast():
            logits, _ = self.discriminator(torch.cat([real_in, fake_in], dim=0))
        real_logits, fake_logits = _split([lg.float() for lg in logits])
        loss = hinge_discriminator_loss(real_logits, fake_logits)
        loss.backward()
        return {"disc": loss.detach()}

    def _metrics(self, codes: Tensor) -> dict[str, Tensor]:
        counts = code_counts(codes, self.codec.codebook_size)
        # codes of stages a sample skipped under quantizer dropout are -1
        used_per_frame = (codes >= 0).float().sum(1).mean()
        kbps = used_per_frame * self.codec.frame_rate * self.bits_per_code / 1000.0
        return {"code_counts": counts, "kbps": kbps.detach()}

    @torch.no_grad()
    def validation_step(self, batch: Tensor) -> tuple[dict[str, float], Tensor]:
        """Eval-mode reconstruction metrics of ``batch (B, C, T)``.

        A codec whose bits carry no information shows it here first: the mel distance at
        1, 2 and 4 codebooks (``mel@k``) stays equal to the full-rate ``mel`` (the old
        default logged ``mel@2 - mel`` of 0.002 from step 500 on). ``latent_pr``, the
        participation ratio of the latent's covariance spectrum, is logged as a trend; it is
        low early in healthy runs too (recipes/README.md).

        Returns:
            ``(metrics, reconstruction (B, C, T))``; metrics hold ``mel`` (the training mel
            loss at all codebooks), ``stft``, ``latent_pr``, and for residual codecs
            ``mel@k`` for ``k`` in 1, 2, 4 below the full count and ``resid@k``, the
            latent's residual norm after ``k`` stages relative to its norm (a healthy RVQ
            shrinks it stage after stage; the first v2 run's stayed at 0.998), and
            ``harmonics``: the fraction of the frames' harmonic ripple below 2 kHz that the
            quantized latent cannot explain linearly (cross-fitted; about 1 or more: the
            codes carry no pitch, as in the v2 default at step 10000).
        """
        codec = self.codec
        length = batch.shape[-1]
        with self.autocast():  # one encoding, quantized at every rate below
            latent = codec.encode_latent(codec._pad(batch))  # (B, D, T')
            out = codec.forward_latent(latent, length)
        fake = out.audio.float()
        metrics = {"mel": float(self.mel(fake, batch)), "stft": float(self.stft(fake, batch))}
        ref, est = batch.float().cpu(), fake.cpu()
        metrics["si_sdr"] = float(eval_metrics.si_sdr(ref, est).mean())
        metrics["mel_distance"] = float(
            eval_metrics.mel_distance(ref, est, codec.sample_rate).mean()
        )
        metrics["latent_pr"] = participation_ratio(latent.float().transpose(1, 2))
        if out.quantized is not None and batch.shape[0] >= 2:
            ripple = harmonic_ripple(codec._pad(batch.float()), codec.hop_length, codec.sample_rate)
            metrics["harmonics"] = float(unexplained_fraction(out.quantized.float(), ripple))
        if out.quantized is not None and getattr(codec, "pitch_head", None) is not None:
            metrics["pitch"] = float(pitch_head_loss(codec, out.quantized, batch))
        metrics.update(residual_ratios(codec, latent))
        k_all = codec.num_codebooks
        if k_all > 1 and codec.supports_partial_codebooks:
            for k in (1, 2, 4):
                if k >= k_all:
                    break
                with self.autocast():
                    partial = codec.forward_latent(latent, length, k).audio.float()
                metrics[f"mel@{k}"] = float(self.mel(partial, batch))
        return metrics, fake

    def state_dict(self) -> dict[str, Any]:
        """Balancer averages (empty without a balancer)."""
        return {"balancer": self.balancer.state_dict()} if self.balancer is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if self.balancer is not None and "balancer" in state:
            self.balancer.load_state_dict(state["balancer"])


def _kwargs(options: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
