"""The exported-prior format: ``config.json`` + ``model.safetensors``, no pickle.

The exported-model half of ARCHITECTURE.md's "two kinds of saved state", after Hugging Face's
``save_pretrained`` / ``from_pretrained``: the JSON holds a format version, the kind of prior
(``"gpt"``, ``"masked"``) and its config dict; the safetensors file holds the state dict.
Training checkpoints (optimiser, step, RNG) are the trainer's business, not this module's.
This module knows no model class (so models can import it); :func:`audiotok.prior.pretrained
.load_prior` maps kinds to classes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiotok.errors import UserError

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns the folder.

    ``model`` needs a ``kind`` class attribute and a ``config`` with ``to_dict()``.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "config": model.config.to_dict(),
    }
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def read_pretrained(
    directory: str | Path, device: torch.device | str = "cpu"
) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """The ``(kind, config dict, state dict)`` saved in ``directory``.

    Raises:
        UserError: the folder lacks the files, the JSON is invalid, or the format version
            is not this library's.
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
    if not isinstance(meta.get("config"), dict):
        raise UserError(f"{config_path}: no config object")
    return str(meta.get("kind")), meta["config"], load_file(str(weights_path), device=str(device))
