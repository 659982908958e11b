"""``load_prior``: rebuild a saved prior of any family from its folder (format: io.py).

The one place that maps a saved ``family`` to a prior class, like the explicit family dict of
``audiotok/registry.py`` (ARCHITECTURE.md: only builders turn dicts into objects). A config
is not trusted: the model it describes is first built on the ``meta`` device (no memory) and
refused if it has more parameters than ``model.safetensors`` has bytes, so a crafted
``config.json`` fails with one line instead of allocating terabytes (as ``audiotok/hub.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from audiotok.errors import UserError
from audiotok.prior.gpt import GPT
from audiotok.prior.io import read_config
from audiotok.prior.masked import MaskedPrior

#: ``config.json["family"]`` -> prior class (each has ``family`` and ``config_class``).
PRIORS: dict[str, type[nn.Module]] = {cls.family: cls for cls in (GPT, MaskedPrior)}


def load_prior(directory: str | Path, device: torch.device | str = "cpu") -> GPT | MaskedPrior:
    """The prior saved in ``directory`` by ``save_pretrained``, in eval mode on ``device``.

    Raises:
        UserError: a missing or invalid folder, another format version, an unknown family,
            a config with unknown keys or bad values, or weights that do not match it (one
            line each).
    """
    from safetensors.torch import load_file

    family, config_dict, weights_path = read_config(directory)
    if family not in PRIORS:
        raise UserError(f"{directory}: unknown prior family {family!r}; known: {sorted(PRIORS)}")
    cls = PRIORS[family]
    try:
        config = cls.config_class.from_dict(config_dict)
        with torch.device("meta"):
            numel = sum(t.numel() for t in cls(config).state_dict().values())
    except (ValueError, TypeError, KeyError) as err:
        raise UserError(f"{directory}: bad prior config ({err})") from None
    if numel > weights_path.stat().st_size:
        raise UserError(
            f"{directory}: the config describes {numel:,} parameters, more than "
            f"{weights_path.name} holds"
        )
    model = cls(config)
    try:
        model.load_state_dict(load_file(str(weights_path), device="cpu"), strict=True)
    except (RuntimeError, OSError) as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"{weights_path}: weights do not match the config ({first})") from None
    return model.to(device).eval()
