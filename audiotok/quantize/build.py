"""Build a quantizer from a plain dict spec (the only place dicts become quantizers).

Examples::

    build_quantizer({"type": "vq", "codebook_size": 1024, "codebook_dim": 8,
                     "normalize": True}, dim=128)
    build_quantizer({"type": "residual", "num_codebooks": 8, "dropout": 1.0,
                     "stage": {"type": "ema", "codebook_size": 1024, "decay": 0.99,
                               "kmeans_init": True, "dead_code_threshold": 2.0}}, dim=128)
    build_quantizer({"type": "fsq", "levels": [8, 5, 5, 5]}, dim=128)

For ``ema``, ``dead_code_threshold`` is an absolute EMA count (vectors per step, so it moves
with the batch size); ``dead_code_fraction`` (e.g. 0.05) instead restarts codes used less than
that fraction of the average code, and wins when both are given.

Each type accepts exactly the keys listed in :data:`SPEC_KEYS`; anything else is a
``ValueError`` naming the unknown keys, so a typo in a recipe never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from audiotok.quantize.base import IdentityQuantizer, Quantizer
from audiotok.quantize.residual import ResidualQuantizer
from audiotok.quantize.vq import VectorQuantizer

__all__ = ["build_quantizer", "SPEC_KEYS"]

#: The keys each ``type`` accepts (besides ``type``), with their defaults.
SPEC_KEYS: dict[str, dict[str, Any]] = {
    "identity": {},
    "vq": {
        "codebook_size": 1024,
        "codebook_dim": None,
        "normalize": False,
        "beta": 0.25,
        "dead_code_fraction": None,
    },
    "ema": {
        "codebook_size": 1024,
        "decay": 0.99,
        "epsilon": 1e-5,
        "beta": 0.25,
        "kmeans_init": True,
        "kmeans_iters": 10,
        "dead_code_threshold": 2.0,
        "dead_code_fraction": None,
    },
    "residual": {
        "num_codebooks": 8,
        "dropout": 0.0,
        "latent_loss": 0.0,
        "gradient": "sum",
        "latent_fit": "both",
        "stage": None,
    },
    "product": {"groups": 2, "stage": None},
    "grouped_residual": {"groups": 2, "num_codebooks": 8, "dropout": 0.0, "stage": None},
    "fsq": {"levels": [8, 5, 5, 5]},
    "gumbel": {"codebook_size": 1024, "temperature": 1.0, "hard": True, "kl_weight": 5e-4},
}


def _options(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping):
        raise ValueError(f"a quantizer spec must be a dict, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in SPEC_KEYS:
        raise ValueError(f"unknown quantizer type {kind!r}; expected one of {sorted(SPEC_KEYS)}")
    allowed = SPEC_KEYS[kind]
    unknown = sorted(set(spec) - set(allowed) - {"type"})
    if unknown:
        raise ValueError(
            f"unknown keys {unknown} for quantizer type {kind!r}; allowed: {sorted(allowed)}"
        )
    options = dict(allowed)
    options.update({k: v for k, v in spec.items() if k != "type"})
    return kind, options


def _stage_factory(options: dict[str, Any], dim: int, kind: str) -> Callable[[], Quantizer]:
    stage = options["stage"]
    if stage is None:
        raise ValueError(f"quantizer type {kind!r} needs a 'stage' spec")
    _options(stage)  # validate once, eagerly
    return lambda: build_quantizer(stage, dim)


def build_quantizer(spec: Mapping[str, Any], dim: int) -> Quantizer:
    """Turn a spec dict into a quantizer working on vectors of size ``dim``.

    Args:
        spec: ``{"type": ..., **options}``; see :data:`SPEC_KEYS` for each type's options.
        dim: D, the size of the vectors the quantizer receives (``(B, ..., D)``).

    Returns:
        The quantizer, in training mode.

    Raises:
        ValueError: unknown type, unknown keys, or invalid values.
    """
    kind, o = _options(spec)
    if kind == "identity":
        return IdentityQuantizer(dim)
    if kind == "vq":
        from audiotok.quantize.ema import RelativeDeadCodeRestart

        fraction = o["dead_code_fraction"]
        if fraction is not None and not 0.0 < fraction < 1.0:
            raise ValueError(f"dead_code_fraction must be in (0, 1), got {fraction}")
        return VectorQuantizer(
            dim,
            o["codebook_size"],
            codebook_dim=o["codebook_dim"],
            normalize=o["normalize"],
            beta=o["beta"],
            restart=RelativeDeadCodeRestart(fraction=fraction) if fraction else None,
        )
    if kind == "residual":
        return ResidualQuantizer.from_factory(
            _stage_factory(o, dim, kind),
            o["num_codebooks"],
            dropout=o["dropout"],
            latent_loss=o["latent_loss"],
            gradient=o["gradient"],
            latent_fit=o["latent_fit"],
        )
    return _build_more(kind, o, dim)


def _build_more(kind: str, o: dict[str, Any], dim: int) -> Quantizer:
    # the remaining types live in modules of their own
    from audiotok.quantize.ema import (
        DeadCodeRestart,
        EMAVectorQuantizer,
        KMeansInit,
        RelativeDeadCodeRestart,
    )
    from audiotok.quantize.fsq import FSQ
    from audiotok.quantize.gumbel import GumbelQuantizer
    from audiotok.quantize.product import GroupedResidualQuantizer, ProductQuantizer

    if kind == "ema":
        threshold, fraction = o["dead_code_threshold"], o["dead_code_fraction"]
        restart: DeadCodeRestart | RelativeDeadCodeRestart | None = None
        if fraction is not None:  # relative to the mean count; wins over the absolute one
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"dead_code_fraction must be in (0, 1), got {fraction}")
            restart = RelativeDeadCodeRestart(fraction=fraction)
        elif threshold:
            restart = DeadCodeRestart(threshold=threshold)
        return EMAVectorQuantizer(
            dim,
            o["codebook_size"],
            decay=o["decay"],
            epsilon=o["epsilon"],
            beta=o["beta"],
            init=KMeansInit(iters=o["kmeans_iters"]) if o["kmeans_init"] else None,
            restart=restart,
        )
    if kind == "fsq":
        return FSQ(list(o["levels"]), dim=dim)
    if kind == "gumbel":
        return GumbelQuantizer(
            dim,
            o["codebook_size"],
            temperature=o["temperature"],
            hard=o["hard"],
            kl_weight=o["kl_weight"],
        )
    groups = o["groups"]
    if not isinstance(groups, int) or groups < 1 or dim % groups:
        raise ValueError(f"groups must be a positive divisor of dim={dim}, got {groups}")
    stage = o["stage"]
    if stage is None:
        raise ValueError(f"quantizer type {kind!r} needs a 'stage' spec")
    _options(stage)
    if kind == "product":
        return ProductQuantizer(dim, groups, lambda d: build_quantizer(stage, d))
    return GroupedResidualQuantizer(
        dim,
        groups,
        lambda d: build_quantizer(stage, d),
        o["num_codebooks"],
        dropout=o["dropout"],
    )
