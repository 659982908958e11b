"""The one registry of model families: name -> class, building from a config dict, model ids.

``hub`` (export/load), ``training`` (build from a recipe) and ``tokenizer`` (the id written
into token files) all ask this module, so a new family (image VQ-VAEs, priors) is added in
one place: :func:`register_family`. Every family class has a ``family`` name, a
``config_class`` with a strict ``from_dict`` and is built as ``cls(config)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from audiotok.audio.soundstream import SoundStream
from audiotok.audio.vqvae import AudioVQVAE
from audiotok.errors import UserError
from audiotok.exports import model_id_for  # re-exported: the id's historical home
from audiotok.image.vqvae import ImageVQVAE
from audiotok.image.vqvae2 import ImageVQVAE2
from audiotok.prior.gpt import GPT
from audiotok.prior.masked import MaskedPrior

__all__ = ["MODEL_FAMILIES", "register_family", "family_class", "build_model", "model_id_for"]

#: family name (``config.json["family"]``, a recipe's ``model.family``) -> model class.
MODEL_FAMILIES: dict[str, type[nn.Module]] = {
    "soundstream": SoundStream,
    "audio_vqvae": AudioVQVAE,
    "image_vqvae": ImageVQVAE,
    "image_vqvae2": ImageVQVAE2,
    "prior_gpt": GPT,
    "prior_masked": MaskedPrior,
}


def register_family(cls: type[nn.Module]) -> type[nn.Module]:
    """Add a model class under its ``family`` name (usable as a class decorator).

    Raises:
        ValueError: the class has no ``family``/``config_class``, or the name is taken by
            another class.
    """
    name = getattr(cls, "family", None)
    if not isinstance(name, str) or not hasattr(cls, "config_class"):
        raise ValueError(f"{cls.__name__} needs 'family' and 'config_class' class attributes")
    if MODEL_FAMILIES.get(name, cls) is not cls:
        raise ValueError(f"model family {name!r} is already registered")
    MODEL_FAMILIES[name] = cls
    return cls


def family_class(family: str) -> type[nn.Module]:
    """The class registered as ``family``.

    Raises:
        UserError: unknown family (the message lists the known ones).
    """
    cls = MODEL_FAMILIES.get(family)
    if cls is None:
        known = ", ".join(sorted(MODEL_FAMILIES))
        raise UserError(f"unknown model family {family!r} (expected one of: {known})")
    return cls


def build_model(family: str, config: dict[str, Any]) -> nn.Module:
    """A fresh model of ``family`` from its config dict.

    Raises:
        UserError: unknown family or an invalid config (the message says which).
    """
    cls = family_class(family)
    try:
        return cls(cls.config_class.from_dict(config))  # type: ignore[attr-defined]
    except (ValueError, TypeError) as exc:
        raise UserError(f"bad model.config for {family}: {exc}") from None
