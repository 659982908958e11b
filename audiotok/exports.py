"""Writing an exported model folder (``config.json`` + ``model.safetensors``) safely.

Tokenizers (:func:`audiotok.hub.save_pretrained`) and priors
(:func:`audiotok.prior.io.save_pretrained`) export the same two files; this leaf module is
the one place that writes them, so both get the same guarantees:

* nothing is overwritten without ``force``, and ``force`` replaces these two files only
  (a model card or the user's notes in the folder are kept);
* each file is written under a temporary name and moved into place when complete (a crash
  never leaves half a file), with ``0o666`` less the umask (safetensors alone makes ``0600``);
* without ``force`` the config is moved first and is the claim on the folder (a concurrent
  export loses before any weights move); with ``force`` the weights go first, so a reader
  never pairs a new config with old weights of another shape.

It knows no model family (``hub`` and ``prior`` both import it); :func:`model_id_for` lives
here for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiotok.atomic import commit, create_temp, default_mode, describe_os_error
from audiotok.errors import UserError

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "EXPORT_FILES", "model_id_for", "write_export"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: The files an export writes; ``force`` replaces these and nothing else in the folder.
EXPORT_FILES = (CONFIG_NAME, WEIGHTS_NAME)


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


def write_export(
    model: nn.Module, directory: str | os.PathLike, info: dict[str, Any], *, force: bool = False
) -> Path:
    """Write ``info`` as ``config.json`` and ``model``'s state dict as ``model.safetensors``.

    Args:
        model: the module whose weights are saved (``safetensors.torch.save_model``, which
            handles shared tensors).
        directory: destination folder (created if absent).
        info: the JSON object of ``config.json`` (``audiotok_version`` is added when absent).
        force: replace an existing export's two files (and nothing else).

    Returns:
        The destination folder.

    Raises:
        UserError: the folder already holds an export and ``force`` is false, the path is
            not a folder, one of the two names is not a regular file, or a write fails.
    """
    from safetensors.torch import save_model

    from audiotok import __version__

    info = {"audiotok_version": __version__, **info}
    dest = Path(directory)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: exists and is not a directory")
    present = [n for n in EXPORT_FILES if (dest / n).exists() or (dest / n).is_symlink()]
    for name in present:
        if not (dest / name).is_file():
            raise UserError(f"{dest / name}: is in the way (not a regular file)")
    if present and not force:
        raise UserError(
            f"{dest}: already holds an exported model ({', '.join(present)}); "
            "use force=True / --force to replace it"
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{dest}: cannot create folder ({describe_os_error(e)})") from None
    temps: dict[str, Path] = {}
    try:
        for name in EXPORT_FILES:
            fd, temps[name] = create_temp(dest / name)
            os.close(fd)
        temps[CONFIG_NAME].write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        save_model(model, str(temps[WEIGHTS_NAME]))
        temps[WEIGHTS_NAME].chmod(default_mode())  # safetensors recreates it as 0600
        order = (WEIGHTS_NAME, CONFIG_NAME) if force else (CONFIG_NAME, WEIGHTS_NAME)
        for name in order:
            commit(temps.pop(name), dest / name, force=force)
    except OSError as e:
        raise UserError(f"{dest}: cannot write the export ({describe_os_error(e)})") from None
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return dest
