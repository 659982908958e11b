"""Saving and loading priors as ``config.json`` + ``model.safetensors`` (no pickle).

The exported-model format of ARCHITECTURE.md ("two kinds of saved state"), after Hugging
Face's ``save_pretrained`` / ``from_pretrained``: the JSON holds a format version, the kind of
prior and its config dict; the safetensors file holds the state dict. Training checkpoints
(optimiser, step, RNG) are the trainer's business, not this module's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from audiotok.errors import UserError
from audiotok.prior.gpt import GPT, GPTConfig
from audiotok.prior.masked import MaskedConfig, MaskedPrior

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    "gpt": (GPT, GPTConfig),
    "masked": (MaskedPrior, MaskedConfig),
}


def _kind_of(model: nn.Module) -> str:
    for kind, (cls, _) in _KINDS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"cannot save a {type(model).__name__}; expected GPT or MaskedPrior")


def save_pretrained(model: GPT | MaskedPrior, directory: str | Path) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns the folder."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": _kind_of(model),
        "config": model.config.to_dict(),
    }
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_prior(directory: str | Path, device: torch.device | str = "cpu") -> GPT | MaskedPrior:
    """The prior saved in ``directory`` by :func:`save_pretrained`, in eval mode.

    Raises:
        UserError: the folder lacks the files, or was written by a newer format / other kind.
    """
    from safetensors.torch import load_file

    folder = Path(directory)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise UserError(f"{folder}: not a saved prior (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{config_path}: invalid JSON ({err})") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{config_path}: prior format version {version}, this audiotok reads {FORMAT_VERSION}"
        )
    if meta.get("kind") not in _KINDS:
        raise UserError(f"{config_path}: unknown prior kind {meta.get('kind')!r}")
    cls, config_cls = _KINDS[meta["kind"]]
    try:
        config = config_cls.from_dict(meta["config"])
    except (ValueError, TypeError, KeyError) as err:
        raise UserError(f"{config_path}: bad config ({err})") from None
    model = cls(config)
    model.load_state_dict(load_file(str(weights_path), device=str(device)), strict=True)
    return model.to(device).eval()
