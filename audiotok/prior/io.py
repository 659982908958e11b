"""The exported-prior format: ``config.json`` + ``model.safetensors``, no pickle.

The exported-model half of ARCHITECTURE.md's "two kinds of saved state", after Hugging Face's
``save_pretrained`` / ``from_pretrained``, with the keys of ``audiotok/hub.py``'s exports::

    config.json         {"format_version": 1, "family": "prior_gpt", "config": {...}}
    model.safetensors   the state dict

``family`` is the class's ``family`` attribute (``prior_gpt``, ``prior_masked``), so the one
registry of model families can list priors next to codecs. Training checkpoints (optimiser,
step, RNG) are the trainer's business. This module knows no model class (models import it);
:func:`audiotok.prior.pretrained.load_prior` maps families to classes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from audiotok.errors import UserError
from audiotok.exports import CONFIG_NAME, WEIGHTS_NAME, model_id_for, write_export

FORMAT_VERSION = 1


def save_pretrained(model: nn.Module, directory: str | Path, *, force: bool = False) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns the folder.

    ``model`` needs a ``family`` class attribute and a ``config`` with ``to_dict()``. Written
    by :func:`audiotok.exports.write_export`, as tokenizers are: atomic, with the umask, and
    an existing export is replaced only with ``force`` (other files in the folder are kept).
    ``config.json`` records ``model_id`` (:func:`~audiotok.exports.model_id_for`) like a
    tokenizer export.

    Raises:
        UserError: the folder already holds an export and ``force`` is false, or a write
            fails.
    """
    meta = {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "model_id": model_id_for(model),
        "config": model.config.to_dict(),
    }
    return write_export(model, directory, meta, force=force)


def read_config(directory: str | Path) -> tuple[str, dict[str, Any], Path]:
    """The ``(family, config dict, weights path)`` of the export in ``directory``.

    Raises:
        UserError: the folder lacks the files, the JSON is invalid, or the format version
            is not this library's.
    """
    folder = Path(directory)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise UserError(f"{folder}: not a saved prior (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{config_path}: invalid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{config_path}: not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{config_path}: prior format version {version}, this audiotok reads {FORMAT_VERSION}"
        )
    if not isinstance(meta.get("config"), dict):
        raise UserError(f"{config_path}: no config object")
    return str(meta.get("family")), meta["config"], weights_path
