"""Exported models: ``config.json`` + ``model.safetensors`` folders, and the bundled default.

An exported model is a folder with two files::

    config.json         {"family": "soundstream", "audiotok_version": "0.1.0",
                         "model_id": "3f2a9c01b7d4", "config": {...}}
    model.safetensors   the state dict (no pickle)

``family`` picks the class from the explicit :data:`MODEL_FAMILIES` dict and ``config`` is
its frozen dataclass config (``Config.from_dict`` rejects unknown keys). ``model_id`` names
the exact model in token files, so that codes are never decoded by a different model; by
default it is a short hash of the family, config and weights (:func:`model_id_for`).

Anchors: HF ``save_pretrained`` / ``from_pretrained``; audiocraft ``utils/export.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiotok import __version__
from audiotok.audio.base import AudioCodec
from audiotok.audio.soundstream import SoundStream
from audiotok.audio.vqvae import AudioVQVAE
from audiotok.errors import UserError
from audiotok.tokenizer import AudioTokenizer

__all__ = [
    "MODEL_FAMILIES",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "DEFAULT_MODEL_DIR",
    "PretrainedInfo",
    "model_id_for",
    "save_pretrained",
    "read_pretrained_info",
    "load_pretrained",
    "load",
]

#: family name (``config.json["family"]``) -> model class.
MODEL_FAMILIES: dict[str, type[AudioCodec]] = {
    "soundstream": SoundStream,
    "audio_vqvae": AudioVQVAE,
}

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: Where the bundled default tokenizer lives (``audiotok.load("default")``).
DEFAULT_MODEL_DIR = Path(__file__).parent / "pretrained" / "default"


@dataclass(frozen=True)
class PretrainedInfo:
    """The contents of an exported model's ``config.json``."""

    family: str
    audiotok_version: str
    model_id: str
    config: dict[str, Any]


def model_id_for(model: nn.Module) -> str:
    """A short stable id of a model: the first 12 hex digits of a SHA-256 over its family,
    config and every state-dict tensor (name, dtype, shape, bytes).

    The same weights give the same id before and after a save/load round trip.
    """
    h = hashlib.sha256()
    family = getattr(model, "family", type(model).__name__)
    config = model.config.to_dict() if hasattr(model, "config") else {}
    h.update(json.dumps({"family": family, "config": config}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def save_pretrained(
    model: AudioCodec,
    directory: str | os.PathLike,
    *,
    model_id: str | None = None,
    force: bool = False,
) -> Path:
    """Export ``model`` to ``directory`` (``config.json`` + ``model.safetensors``).

    The folder is written under a temporary name beside ``directory`` and renamed into
    place, so a crash never leaves a half-written model.

    Args:
        model: an instance of a class in :data:`MODEL_FAMILIES`.
        directory: destination folder; must not exist (or be empty) unless ``force``.
        model_id: the id recorded in token files; default :func:`model_id_for`.
        force: replace an existing export.

    Returns:
        The destination folder.

    Raises:
        UserError: the destination exists and ``force`` is false.
        ValueError: the model's family is not registered.
    """
    from safetensors.torch import save_model

    family = getattr(model, "family", None)
    if MODEL_FAMILIES.get(family) is not type(model):
        raise ValueError(f"{type(model).__name__} is not a registered model family")
    dest = Path(directory)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise UserError(f"{dest}: already exists (use force=True / --force to overwrite)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "family": family,
        "audiotok_version": __version__,
        "model_id": model_id or model_id_for(model),
        "config": model.config.to_dict(),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        (tmp / CONFIG_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        save_model(model, str(tmp / WEIGHTS_NAME))
        # mkdtemp makes a private (0700) folder; an export is meant to be shared/packaged
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        for f in tmp.iterdir():
            f.chmod(0o666 & ~umask)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def read_pretrained_info(directory: str | os.PathLike) -> PretrainedInfo:
    """Read and check an exported model's ``config.json``.

    Raises:
        UserError: missing folder or file, invalid JSON, missing keys or an unknown family.
    """
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: model directory not found")
    path = d / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{path}: missing (not an exported audiotok model)")
    try:
        raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: corrupt config ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise UserError(f"{path}: corrupt config (expected an object with a 'config' object)")
    family = raw.get("family")
    if family not in MODEL_FAMILIES:
        known = ", ".join(sorted(MODEL_FAMILIES))
        raise UserError(f"{path}: unknown model family {family!r} (known: {known})")
    return PretrainedInfo(
        family=family,
        audiotok_version=str(raw.get("audiotok_version", "unknown")),
        model_id=str(raw.get("model_id") or ""),
        config=raw["config"],
    )


def load_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu") -> AudioCodec:
    """Load an exported model in eval mode.

    Args:
        directory: a folder written by :func:`save_pretrained`.
        device: where to put the model.

    Returns:
        The model (an :class:`~audiotok.audio.base.AudioCodec`), ``eval()``-ed.

    Raises:
        UserError: see :func:`read_pretrained_info`; also a bad config, a missing or corrupt
            weights file, or weights that do not fit the config.
    """
    from safetensors.torch import load_model

    info = read_pretrained_info(directory)
    d = Path(directory)
    cls = MODEL_FAMILIES[info.family]
    try:
        config = cls.config_class.from_dict(info.config)
        model = cls(config)
    except (ValueError, TypeError) as e:
        raise UserError(f"{d / CONFIG_NAME}: bad {info.family} config ({e})") from None
    weights = d / WEIGHTS_NAME
    if not weights.is_file():
        raise UserError(f"{weights}: missing")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False, device=str(device))
    except Exception as e:  # SafetensorError, RuntimeError (shape mismatch), OSError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{weights}: weights do not load ({msg})") from None
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:3])}" if missing else ""]
        parts += [f"unexpected {', '.join(unexpected[:3])}" if unexpected else ""]
        raise UserError(
            f"{weights}: weights do not fit the config ({'; '.join(p for p in parts if p)})"
        )
    return model.to(device).eval()


def load(
    name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu"
) -> AudioTokenizer:
    """Load a tokenizer: ``"default"`` (the bundled model) or an exported model folder.

    Args:
        name_or_path: ``"default"`` or a folder written by :func:`save_pretrained`.
        device: where to run the model.

    Returns:
        An :class:`~audiotok.tokenizer.AudioTokenizer` with the stored ``model_id``.

    Raises:
        UserError: the bundled default is not installed, or the folder does not load.
    """
    if str(name_or_path) == "default":
        if not (DEFAULT_MODEL_DIR / CONFIG_NAME).is_file():
            raise UserError(
                f"{DEFAULT_MODEL_DIR}: the bundled default model is not installed; "
                "pass a model folder (e.g. --model DIR, written by 'audiotok export')"
            )
        directory = DEFAULT_MODEL_DIR
    else:
        directory = Path(name_or_path)
    info = read_pretrained_info(directory)
    model = load_pretrained(directory, device=device)
    return AudioTokenizer(model, model_id=info.model_id or None)
