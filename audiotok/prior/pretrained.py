"""``load_prior``: rebuild a saved prior of any kind from its folder (see io.py for the format).

The one place that maps a saved ``kind`` to a model class, like the explicit family dict of
``audiotok/hub.py`` (ARCHITECTURE.md: only builders turn dicts into objects).
"""

from __future__ import annotations

from pathlib import Path

import torch

from audiotok.errors import UserError
from audiotok.prior.gpt import GPT, GPTConfig
from audiotok.prior.io import read_pretrained
from audiotok.prior.masked import MaskedConfig, MaskedPrior

PRIORS: dict[str, tuple[type[GPT] | type[MaskedPrior], type[GPTConfig] | type[MaskedConfig]]] = {
    GPT.kind: (GPT, GPTConfig),
    MaskedPrior.kind: (MaskedPrior, MaskedConfig),
}


def load_prior(directory: str | Path, device: torch.device | str = "cpu") -> GPT | MaskedPrior:
    """The prior saved in ``directory`` by ``save_pretrained``, in eval mode on ``device``.

    Raises:
        UserError: a missing or invalid folder, another format version, an unknown kind or a
            config with unknown keys (one line each).
    """
    kind, config_dict, state = read_pretrained(directory, device)
    if kind not in PRIORS:
        raise UserError(f"{directory}: unknown prior kind {kind!r}; known: {sorted(PRIORS)}")
    model_cls, config_cls = PRIORS[kind]
    try:
        config = config_cls.from_dict(config_dict)
    except (ValueError, TypeError, KeyError) as err:
        raise UserError(f"{directory}: bad prior config ({err})") from None
    model = model_cls(config)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
