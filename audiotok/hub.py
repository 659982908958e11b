"""Exported models: ``config.json`` + ``model.safetensors`` folders, and the bundled models.

An exported model is a folder with two files::

    config.json         {"family": "soundstream", "audiotok_version": "0.1.0",
                         "format_version": 1, "model_id": "3f2a9c01b7d4", "config": {...}}
    model.safetensors   the state dict (no pickle)

``format_version`` (1 when absent, as in the bundled default) says how to read the state dict:
an older export is brought up to date by the steps of :mod:`audiotok.migrations` before
``load_state_dict``, so a renamed parameter or buffer never strands a user's model; a newer
one is refused with one line ("made by a newer audiotok"). Weights that do not fit the config
name the first missing, unexpected and mis-shaped keys in full (:mod:`audiotok.statedict`).

``family`` picks the class from the explicit :data:`MODEL_FAMILIES` dict and ``config`` is
its frozen dataclass config (``Config.from_dict`` rejects unknown keys). A config is not
trusted: no size in it may exceed :data:`MAX_CONFIG_INT`, and the model it describes is first
built on the ``meta`` device (no memory) and refused if it needs more bytes than
``model.safetensors`` holds, so that a crafted ``config.json`` fails with one line instead of
allocating terabytes. ``model_id`` names
the exact model in token files, so that codes are never decoded by a different model; by
default it is a short hash of the family, config and weights (:func:`model_id_for`). A
decoder fine-tune that makes another model's codes bit for bit records that model's id as
``codes_id``, and its token files carry it (:attr:`PretrainedInfo.token_id`).

Over 400 lines as one file: export, the config checks that guard loading, loading and the
bundled-model lookup all read and write the same ``config.json``; split, each would import
the others' private checks.

Anchors: HF ``save_pretrained`` / ``from_pretrained``; audiocraft ``utils/export.py``.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from audiotok import __version__
from audiotok.atomic import describe_os_error
from audiotok.audio.base import AudioCodec
from audiotok.errors import UserError
from audiotok.exports import CONFIG_NAME, EXPORT_FILES, WEIGHTS_NAME, write_export
from audiotok.migrations import FORMAT_VERSION, format_version_of, migrate_config, migrate_state
from audiotok.registry import MODEL_FAMILIES, model_id_for
from audiotok.statedict import load_state_strict
from audiotok.tokenizer import TOKENIZER_CLASSES
from audiotok.tokenizer.audio import AudioTokenizer
from audiotok.tokenizer.image import ImageTokenizer

__all__ = [
    "MODEL_FAMILIES",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "EXPORT_FILES",
    "FORMAT_VERSION",
    "MAX_CONFIG_INT",
    "DEFAULT_MODEL_DIR",
    "BUNDLED_MODELS",
    "bundled_dir",
    "PretrainedInfo",
    "model_id_for",
    "save_pretrained",
    "read_pretrained_info",
    "load_pretrained",
    "load",
    "load_prior",
]


#: Largest integer accepted anywhere in a ``config.json`` model config (and at most 4096
#: codebooks), checked before anything is built.
MAX_CONFIG_INT = 1 << 24
_MAX_CONFIG_BYTES = 1 << 20
#: Where the bundled default tokenizer lives (``audiotok.load("default")``).
DEFAULT_MODEL_DIR = Path(__file__).parent / "pretrained" / "default"
#: The models shipped in the package, by the name ``audiotok.load(name)`` and ``--model``
#: take: ``"default"`` the 24 kHz audio tokenizer, ``"fmnist"`` the Fashion-MNIST image
#: VQ-VAE (28x28 grey -> 7x7 codes of 512). Each folder holds an export and a model card.
BUNDLED_MODELS: dict[str, Path] = {
    "default": DEFAULT_MODEL_DIR,
    "fmnist": Path(__file__).parent / "pretrained" / "fmnist",
}


@dataclass(frozen=True)
class PretrainedInfo:
    """The contents of an exported model's ``config.json``.

    ``model_id`` names these weights. ``codes_id``, when present, names the model whose codes
    this one makes bit for bit (its encoder and quantizer are that model's, as after a
    fine-tune with ``freeze: [encoder, quantizer]``): token files then carry that id, so
    token files and priors of the original stay valid for the fine-tuned decoder.

    ``config`` is as stored, in the export's ``format_version`` (see
    :func:`audiotok.migrations.migrate_config`).
    """

    family: str
    audiotok_version: str
    model_id: str
    config: dict[str, Any]
    format_version: int = FORMAT_VERSION
    codes_id: str = ""

    @property
    def token_id(self) -> str:
        """The id token files made with this model carry: ``codes_id`` when the model makes
        the codes of another (a decoder fine-tune), else its own ``model_id``."""
        return self.codes_id or self.model_id


def save_pretrained(
    model: AudioCodec,
    directory: str | os.PathLike,
    *,
    model_id: str | None = None,
    force: bool = False,
    dtype: torch.dtype | None = None,
    codes_id: str | None = None,
) -> Path:
    """Export ``model`` to ``directory`` (``config.json`` + ``model.safetensors``).

    Each file is written under a temporary name in ``directory`` and moved into place once
    complete, so a crash never leaves a half-written file. Only the two files of
    :data:`EXPORT_FILES` are written or replaced; anything else in the folder (a model card,
    the user's notes) is left alone. Files get ``0o666`` less the umask.

    Args:
        model: an instance of a class in :data:`MODEL_FAMILIES`.
        directory: destination folder (created if absent); it must not already hold an
            export (``config.json`` or ``model.safetensors``) unless ``force``.
        model_id: the id recorded in token files; default :func:`model_id_for`.
        force: replace an existing export's two files.
        dtype: store the floating-point tensors in this dtype (``torch.float16`` halves the
            file); loading casts them back to the model's own dtype, so the exported model
            *is* the rounded one: its ``model_id`` is computed from the rounded weights.
        codes_id: the id of a model whose codes this one makes bit for bit (see
            :class:`PretrainedInfo`); the caller has checked that it does.

    Returns:
        The destination folder.

    Raises:
        UserError: the destination holds an export and ``force`` is false, is not a folder,
            or cannot be written (permission, disk full, ...); a tensor that ``dtype``
            cannot hold (overflow).
        ValueError: the model's family is not registered.
    """
    family = getattr(model, "family", None)
    if MODEL_FAMILIES.get(family) is not type(model):
        raise ValueError(f"{type(model).__name__} is not a registered model family")
    if dtype is not None:
        model = _cast_for_export(model, dtype)
        if model_id is None:
            model_id = model_id_for(copy.deepcopy(model).float())
    info = {
        "family": family,
        "audiotok_version": __version__,
        "format_version": FORMAT_VERSION,
        "model_id": model_id or model_id_for(model),
        "config": model.config.to_dict(),
    }
    if codes_id and codes_id != info["model_id"]:
        info["codes_id"] = codes_id
    return write_export(model, directory, info, force=force)


def _cast_for_export(model: AudioCodec, dtype: torch.dtype) -> AudioCodec:
    """A copy of ``model`` with its floating tensors in ``dtype``; refuses overflow."""
    if not dtype.is_floating_point:
        raise ValueError(f"export dtype must be a floating-point dtype, got {dtype}")
    cast = copy.deepcopy(model).to(dtype)
    for name, t in cast.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise UserError(f"{name} does not fit in {dtype} (overflow); export it as float32")
    return cast


def read_pretrained_info(directory: str | os.PathLike) -> PretrainedInfo:
    """Read and check an exported model's ``config.json``.

    Raises:
        UserError: missing folder or file, invalid JSON, missing keys, an unknown family, or
            a ``format_version`` that is invalid or newer than this audiotok reads.
    """
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: model directory not found")
    path = d / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{path}: missing (not an exported audiotok model)")
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise UserError(f"{path}: corrupt config (larger than {_MAX_CONFIG_BYTES} bytes)")
    try:
        raw = json.loads(path.read_text())
    except RecursionError:
        raise UserError(f"{path}: corrupt config (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: corrupt config ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({describe_os_error(e)})") from None
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
        format_version=format_version_of(raw, str(path)),
        codes_id=str(raw.get("codes_id") or ""),
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
            weights file, an old format that does not migrate, or weights that do not fit the
            config (the message names the first missing, unexpected and mis-shaped keys).
    """
    from safetensors.torch import load_file

    info = read_pretrained_info(directory)
    d = Path(directory)
    cls = MODEL_FAMILIES[info.family]
    weights = d / WEIGHTS_NAME
    _check_sizes(d / CONFIG_NAME, info.config)
    try:
        raw_config = migrate_config(info.family, info.format_version, info.config)
        config = cls.config_class.from_dict(raw_config)
    except (ValueError, TypeError) as e:
        raise UserError(f"{d / CONFIG_NAME}: bad {info.family} config ({e})") from None
    if not weights.is_file():
        raise UserError(f"{weights}: missing")
    _check_model_bytes(d / CONFIG_NAME, cls, config, weights.stat().st_size)
    try:
        model = cls(config)
    except (ValueError, TypeError) as e:
        raise UserError(f"{d / CONFIG_NAME}: bad {info.family} config ({e})") from None
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as e:  # SafetensorError, OSError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{weights}: weights do not load ({msg})") from None
    try:
        state = migrate_state(info.family, info.format_version, state)
    except ValueError as e:
        raise UserError(
            f"{weights}: cannot bring format {info.format_version} up to date ({e})"
        ) from None
    load_state_strict(
        model,
        state,
        f"{weights}: weights do not fit the {info.family} config",
        optional=_tied_names(model, state),
    )
    return model.to(device).eval()


def _tied_names(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> set[str]:
    """Names of tensors that share memory with another entry of ``model``'s state that
    ``state`` holds: safetensors' ``save_model`` stores tied weights once."""
    groups: dict[tuple[int, int, tuple[int, ...]], list[str]] = {}
    for name, t in model.state_dict().items():
        if t.numel():
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
            groups.setdefault(key, []).append(name)
    return {
        n
        for names in groups.values()
        if len(names) > 1 and any(m in state for m in names)
        for n in names
    }


def _check_sizes(path: Path, config: Any, key: str = "config") -> None:
    """Refuse absurd integers anywhere in a config before any model code sees them."""
    if isinstance(config, dict):
        for k, v in config.items():
            _check_sizes(path, v, f"{key}.{k}")
    elif isinstance(config, list):
        if len(config) > 4096:
            raise UserError(f"{path}: {key} has {len(config)} entries; at most 4096")
        for i, v in enumerate(config):
            _check_sizes(path, v, f"{key}[{i}]")
    elif isinstance(config, int) and not isinstance(config, bool):
        most = 4096 if key.endswith("num_codebooks") else MAX_CONFIG_INT
        if abs(config) > most:
            raise UserError(f"{path}: {key} = {config} is out of range (at most {most:,})")


def _check_model_bytes(path: Path, cls: type[AudioCodec], config: Any, have: int) -> None:
    """Build the model on the ``meta`` device (no memory) and refuse it if its state needs
    far more bytes than the weights file holds: a crafted config must not allocate."""
    try:
        with torch.device("meta"):
            state = cls(config).state_dict()
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: bad {cls.family} config ({e})") from None
    except Exception:  # a layer that cannot be built on "meta": the real build decides
        return
    need = sum(t.numel() * t.element_size() for t in state.values())
    if need > 2 * have + (1 << 20):
        raise UserError(
            f"{path}: the config describes a model of {need / 1e6:,.1f} MB but "
            f"{WEIGHTS_NAME} holds {have / 1e6:,.1f} MB; sizes in the config are wrong"
        )


def bundled_dir(name: str) -> Path | None:
    """The folder of the bundled model ``name``, or ``None`` when ``name`` is not one.

    Raises:
        UserError: ``name`` is bundled but its files are not installed.
    """
    # DEFAULT_MODEL_DIR looked up now, not at import: tests and packagers may point it elsewhere
    directory = DEFAULT_MODEL_DIR if name == "default" else BUNDLED_MODELS.get(name)
    if directory is None:
        return None
    if not (directory / CONFIG_NAME).is_file():
        raise UserError(
            f"{directory}: the bundled {name} model is not installed; "
            "pass a model folder (e.g. --model DIR, written by 'audiotok export')"
        )
    return directory


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The export folder ``name_or_path`` means: a bundled name (:data:`BUNDLED_MODELS`;
    these win over a folder of the same name, which ``./name`` reaches) or a folder.

    Raises:
        UserError: neither a bundled name nor an existing folder (the message lists the
            bundled names).
    """
    text = os.fspath(name_or_path)
    bundled = bundled_dir(text) if isinstance(name_or_path, str) else None
    if bundled is not None:
        return bundled
    directory = Path(text)
    if not directory.is_dir() and os.sep not in text and "/" not in text:
        names = ", ".join(sorted(BUNDLED_MODELS))
        raise UserError(
            f"unknown model {text!r}: not a bundled model ({names}) nor an exported model folder"
        )
    return directory


def bundled_name_for(model_id: str) -> str | None:
    """The bundled model whose ``config.json`` records ``model_id``, if any (token files
    name the model that made them by id; ``audiotok decode`` finds it without --model)."""
    for name, directory in BUNDLED_MODELS.items():
        try:
            if (directory / CONFIG_NAME).is_file() and read_pretrained_info(
                directory
            ).token_id == model_id:
                return name
        except UserError:
            continue
    return None


def load(
    name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu"
) -> AudioTokenizer | ImageTokenizer:
    """Load a tokenizer: a bundled model by name or an exported model folder.

    The family in ``config.json`` picks the model class from the registry, and the class's
    ``modality`` picks the tokenizer (:data:`audiotok.tokenizer.TOKENIZER_CLASSES`).

    Args:
        name_or_path: a name of :data:`BUNDLED_MODELS` (``"default"``: the 24 kHz audio
            tokenizer; ``"fmnist"``: the Fashion-MNIST image VQ-VAE) or a folder written by
            :func:`save_pretrained`.
        device: where to run the model.

    Returns:
        An :class:`~audiotok.tokenizer.AudioTokenizer` for audio families, an
        :class:`~audiotok.tokenizer.ImageTokenizer` for image families, with the stored
        ``model_id``.

    Raises:
        UserError: an unknown name (the message lists the bundled ones), a bundled model
            that is not installed, a folder that does not load, or a model that is not a
            tokenizer (a prior).
    """
    directory = resolve_model(name_or_path)
    info = read_pretrained_info(directory)
    modality = getattr(MODEL_FAMILIES[info.family], "modality", None)
    tokenizer_class = TOKENIZER_CLASSES.get(modality)
    if tokenizer_class is None:
        raise UserError(
            f"{directory}: a {info.family} model ({modality}) is not a tokenizer; "
            "pass an audio or image model"
        )
    model = load_pretrained(directory, device=device)
    tokenizer = tokenizer_class(model, model_id=info.token_id or None)
    if info.codes_id and info.model_id != info.codes_id:
        tokenizer.weights_id = info.model_id
    return tokenizer


def load_prior(
    name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu"
) -> Any:
    """Load a token prior: the one bundled for a bundled tokenizer (``"default"``,
    ``"fmnist"``: ``audiotok/pretrained/<name>_prior``) or an exported prior folder.

    Returns:
        A :class:`~audiotok.prior.GPT` or :class:`~audiotok.prior.MaskedPrior` in eval mode;
        ``prior.generate(...)`` samples codes, ``prior.score(codes)`` gives their bits.

    Raises:
        UserError: no prior is bundled for that name, or the folder does not load.
    """
    from audiotok.prior import load_prior as _load_prior

    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in BUNDLED_MODELS:
        folder = BUNDLED_MODELS[text].parent / f"{text}_prior"
        if not (folder / CONFIG_NAME).is_file():
            raise UserError(f"no prior is bundled for model {text!r}; pass a prior folder")
        return _load_prior(folder, device=device)
    return _load_prior(name_or_path, device=device)
