"""Turn a training checkpoint into an exported model (``config.json`` + ``model.safetensors``).

Training checkpoints carry optimisers, RNG states and the whole recipe; users need only the
model. :func:`export_checkpoint` rebuilds the model from the checkpoint's recipe
(``model.family`` and ``model.config``), loads its weights and writes it with
:func:`audiotok.hub.save_pretrained`, which ``audiotok.load_pretrained`` reads back.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import torch

from audiotok.errors import UserError
from audiotok.statedict import load_state_strict
from audiotok.training.checkpoint import latest_checkpoint, load_checkpoint

__all__ = ["DISCRIMINATOR_NAME", "codes_source", "export_checkpoint"]

#: the discriminators' weights beside an export (``audiotok export --discriminator``)
DISCRIMINATOR_NAME = "discriminator.safetensors"


def export_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    force: bool = False,
    dtype: torch.dtype | None = None,
    discriminator: bool = False,
) -> Path:
    """Export the model of a training checkpoint.

    Args:
        checkpoint: a ``step_N.pt`` file, or a run folder (its latest checkpoint is used).
        out_dir: destination folder; must not already hold an export (``config.json`` or
            ``model.safetensors``) unless ``force``. Other files in it are left alone.
        force: replace an existing export's two files (and nothing else).
        dtype: store the weights in this floating dtype (see
            :func:`audiotok.hub.save_pretrained`); None keeps them as trained.
        discriminator: also write the checkpoint's discriminators, as trained, to
            ``DISCRIMINATOR_NAME`` beside the model: ``init_from`` that folder then resumes the
            adversarial game instead of starting it over (loading the model never reads it).

    Returns:
        The export folder.

    Raises:
        UserError: unreadable checkpoint, existing destination, or a model that cannot be
            rebuilt from the checkpoint's recipe.
    """
    from audiotok.hub import save_pretrained
    from audiotok.registry import build_model

    path = Path(checkpoint)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise UserError(f"no checkpoints in {path}")
        path = found
    state = load_checkpoint(path)
    model_cfg = state["config"].get("model", {})
    model = build_model(model_cfg.get("family", ""), model_cfg.get("config", {}))
    load_state_strict(model, state["model"], f"{path}: weights do not match its recipe's model")
    task_state = state.get("task") or {}
    for key in ("tokenizer_id", "latent_shape"):
        # a prior records the tokenizer (and image grid) of the shards it was trained on
        value = task_state.get(key)
        if value and getattr(model.config, key, None) in ("", ()):
            value = tuple(value) if isinstance(value, list) else value
            model.config = dataclasses.replace(model.config, **{key: value})
    window = int(task_state.get("window_frames") or 0)
    if window and hasattr(model, "context_frames") and window < model.context_frames:
        # RoPE positions past the training window were never trained; scoring and sampling
        # with them cost the demo prior 5 points of compression (19.9 % vs 25.0 % below raw)
        steps = model.config.pattern.num_steps(window)
        model.config = dataclasses.replace(model.config, block_size=steps)
    model.eval()
    disc_state = state.get("discriminator")
    if discriminator and not disc_state:
        raise UserError(f"{path} has no discriminator to export")
    codes_id = codes_source(state["config"], model, dtype)
    out = save_pretrained(model, out_dir, force=force, dtype=dtype, codes_id=codes_id)
    if discriminator:
        from safetensors.torch import save

        from audiotok.atomic import open_atomic

        tensors = {k: v.detach().contiguous().cpu() for k, v in disc_state.items()}
        with open_atomic(out / DISCRIMINATOR_NAME, force=force) as f:
            f.write(save(tensors))
    return out


def codes_source(
    config: dict, model: torch.nn.Module, dtype: torch.dtype | None = None
) -> str | None:
    """The token id of the model a fine-tune started from, when the fine-tune makes its
    codes bit for bit; else None.

    That is the case when the recipe froze every module that makes codes (the family's
    ``code_modules``, e.g. ``freeze: [encoder, quantizer]``), started from an exported
    model (``init_from``: a folder or bundled name; a checkpoint has no id), and the check
    holds: those modules' weights, as the export will store them (``dtype``), equal the
    original's, and both encode a probe signal to the same codes.
    """
    from audiotok.hub import load_pretrained, read_pretrained_info, resolve_model

    modules = tuple(getattr(type(model), "code_modules", ()))
    source = config.get("init_from")
    if not modules or not source or not set(modules) <= set(config.get("freeze") or ()):
        return None
    try:
        folder = resolve_model(source)
        info = read_pretrained_info(folder)
        original = load_pretrained(folder).eval()
    except UserError:
        return None  # a checkpoint, or a folder that is gone
    if info.family != getattr(model, "family", None):
        return None
    mine = model
    if dtype is not None:
        # the export as it will load: stored weights rounded, everything else (STFT windows,
        # filterbanks: non-persistent buffers) as built, in float32
        mine = copy.deepcopy(model)
        state = {
            k: v.to(dtype).to(v.dtype) if v.is_floating_point() else v
            for k, v in model.state_dict().items()
        }
        mine.load_state_dict(state)
    mine.eval()
    prefixes = tuple(f"{m}." for m in modules)
    theirs, ours = original.state_dict(), mine.state_dict()
    for name, value in theirs.items():
        if name.startswith(prefixes):
            if name not in ours or not torch.equal(value.float(), ours[name].float()):
                return None
    gen = torch.Generator().manual_seed(0)
    sr, channels = int(model.sample_rate), int(model.channels)
    t = torch.arange(sr) / sr
    chirp = torch.sin(2 * torch.pi * (100 + 2000 * t) * t)
    probe = 0.3 * chirp + 0.05 * torch.randn(channels, sr, generator=gen)
    with torch.no_grad():
        if not torch.equal(original.encode(probe[None]), mine.encode(probe[None])):
            return None
    return info.token_id
