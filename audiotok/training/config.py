"""Training recipes: a YAML file -> strict, frozen dataclasses (:class:`TrainConfig`).

A recipe is plain YAML with one mapping per section (``model``, ``data``, ``optim``,
``discriminator``, ``loss``, ``checkpoint``, ``log``, ``validation``) and a few top-level
scalars (``seed``, ``run_dir``, ``device``, ``precision``). Every key is checked: a misspelt
or unknown key at any level is a :class:`~audiotok.errors.UserError` with one line naming the
key's dotted path and where it came from (``unknown key 'optim.lrr' in recipe.yaml line 12``).
Values are type-checked the same way, and broken YAML names the file, line and column.
Command-line overrides (``--set optim.lr=3e-4``) are parsed with ``yaml.safe_load`` and obey
the same rules. Strings may use ``${NAME}`` or
``${NAME:-default}`` environment variables (:func:`expand_env`), which is how the bundled
recipes find their corpus (``${AUDIOTOK_CORPUS}``: the environment's value, else the user's
cache folder).

Free-form dicts (``model.config``, ``discriminator.msstft``/``mpd``, ``loss.mel_options``/
``stft_options``/``phase_options``) are passed on to the classes they configure; their keys are checked here
against those classes (the model family's config fields, the constructors' keyword
arguments), and their values when the trainer builds them.

Over 400 lines on purpose: one strict schema for every recipe section (the dataclasses,
their checks, ``--set`` overrides, environment expansion and YAML errors with line numbers)
reads best in one place; the model-level configs use :mod:`audiotok.config` instead.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiotok.config import ConfigError, coerce
from audiotok.errors import UserError

__all__ = [
    "ModelConfig",
    "DataConfig",
    "OptimConfig",
    "DiscriminatorConfig",
    "LossConfig",
    "CheckpointConfig",
    "LogConfig",
    "ValidationConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "expand_env",
]


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train: a family name of :data:`audiotok.hub.MODEL_FAMILIES` and the
    dict given to that family's ``config_class.from_dict``."""

    family: str = "soundstream"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Training / validation audio.

    ``train`` and ``dev`` are each a folder of audio files, a text file list, a JSONL
    manifest, or ``synthetic`` (clips generated on the fly, no files; see
    :mod:`audiotok.data.synthetic`). ``sample_rate`` and ``channels`` default to the model's. ``batch_size`` is per
    process (the global batch under DDP is ``batch_size * world_size``). An epoch has
    ``examples_per_epoch`` random crops (default: one per training file). ``shares`` sets
    the training mix by a manifest field (``mix_by``, default ``kind``): ``{speech: 0.5,
    music: 0.5}`` draws half the crops from each whatever their hours (duration-weighted
    within a group; see :func:`audiotok.data.audio.mix_weights`).
    """

    train: str = ""
    dev: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    segment_seconds: float = 1.0
    batch_size: int = 8
    num_workers: int = 0
    preload: bool = False
    loudness_db: float | None = None
    examples_per_epoch: int | None = None
    image_size: int | None = None
    shares: dict[str, float] | None = None
    mix_by: str = "kind"


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up then a cosine (or constant) schedule, per optimiser step.

    ``max_seconds`` is a wall-clock budget for one process's training: once that many seconds
    have passed the run validates, saves its checkpoint and ends (``--resume`` continues), so
    a lent machine is used to its last minute without guessing its speed. The schedule still
    counts steps; pair it with ``schedule: constant`` or a ``max_steps`` that the budget
    reaches.
    """

    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_steps: int = 10000
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    max_seconds: float | None = None


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Adversarial training: which discriminators and when they start.

    ``msstft`` / ``mpd`` are keyword arguments of ``MultiScaleSTFTDiscriminator`` /
    ``MultiPeriodDiscriminator`` (``null`` leaves that one out). Before ``start_step`` the
    discriminators are neither trained nor used in the generator loss. ``lr`` / ``betas``
    default to the generator's. ``segment_seconds`` shows the discriminators a random crop of
    that length of each real / reconstructed pair (the same offset for both) instead of the
    whole training segment: the reconstruction losses still see everything, and on a CPU,
    where the discriminators cost several times the codec, half-length crops nearly halve
    the step time (HiFi-GAN, arXiv:2010.05646, discriminates short segments too).
    """

    enabled: bool = True
    msstft: dict[str, Any] | None = field(default_factory=dict)
    mpd: dict[str, Any] | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float = 0.0
    grad_clip: float | None = None
    start_step: int = 0
    segment_seconds: float | None = None


@dataclass(frozen=True)
class LossConfig:
    """Loss weights; a zero weight skips computing that loss.

    ``balancer`` turns on the EnCodec loss balancer (arXiv:2210.13438, section 3.4): the
    gradients of the audio losses with respect to the reconstruction are rescaled so that
    each loss contributes in proportion to its weight, whatever its scale.
    ``image`` holds the image VQ-VAE objective (fields of
    :class:`audiotok.image.vqgan.VQGANLossConfig`: L1/SSIM/focal-frequency weights, the
    PatchGAN and its warm-up); the audio weights above do not apply to images.
    ``mel_options`` / ``stft_options`` are keyword arguments of ``MultiScaleMelLoss`` /
    ``MultiResolutionSTFTLoss`` (e.g. ``n_ffts``). ``feature_matching_relative`` divides each
    feature map's L1 by the real map's mean magnitude (EnCodec), which keeps the feature
    matching weight meaningful without the balancer.
    ``spectrum`` weighs an L1 between the log-magnitude frames an inverse-STFT decoder
    predicts and the input's own, in the decoder's framing (APNet/APCodec's amplitude loss):
    a direct, per-bin target for the harmonics, which the waveform losses reach only
    through the inverse STFT.
    ``phase`` weighs :class:`~audiotok.audio.losses.PhaseDerivativeLoss` (options in
    ``phase_options``): how far the output's phase advance from frame to frame, i.e. the
    frequency actually heard, is from the input's at the bins that carry energy. It sees a
    harmonic drawn a few hertz off, which the magnitude losses barely do.
    ``latent_harmonics`` weighs the fraction of each frame's harmonic fine structure (its
    log-spectrum's ripple below 2 kHz, envelope removed) that a ridge regression from the
    *quantized* latent cannot explain, fitted in closed form per batch: it makes the codes
    carry the pitch, which the waveform losses alone left out of the v2 default's latent.
    ``pitch`` weighs how much of each frame's pitch salience (subharmonic summation over
    that ripple) the codec's pitch head (``model.config.pitch_head``, a small MLP on the
    quantized latent) cannot predict: the nonlinear version of ``latent_harmonics``, which
    asks the codes to carry pitch in any form, not the ripple itself.
    """

    mel: float = 1.0
    stft: float = 1.0
    time_l1: float = 0.0
    spectrum: float = 0.0
    phase: float = 0.0
    latent_harmonics: float = 0.0
    pitch: float = 0.0
    adversarial: float = 1.0
    feature_matching: float = 2.0
    commitment: float = 1.0
    balancer: bool = False
    feature_matching_relative: bool = False
    mel_options: dict[str, Any] = field(default_factory=dict)
    stft_options: dict[str, Any] = field(default_factory=dict)
    phase_options: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointConfig:
    """Write a training checkpoint every ``every`` steps (and at the end); keep the last N."""

    every: int = 1000
    keep_last: int = 3


@dataclass(frozen=True)
class LogConfig:
    """Metrics logging: JSONL always, TensorBoard when importable, a rich progress bar."""

    every: int = 10
    tensorboard: bool = True
    progress: bool = True


@dataclass(frozen=True)
class ValidationConfig:
    """Every ``every`` steps: metrics on ``num_batches`` dev batches, audio + spectrograms of
    ``num_audio_samples`` clips (``every: 0`` disables validation). Dev items are fixed
    centre crops of ``segment_seconds`` (default ``data.segment_seconds``)."""

    every: int = 1000
    num_batches: int = 4
    num_audio_samples: int = 2
    segment_seconds: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """A whole recipe. ``run_dir`` defaults to ``runs/<recipe name>``; ``device`` is
    ``auto|cpu|cuda|cuda:N``; ``precision`` is ``auto|fp32|bf16`` (bf16 autocast on CUDA or CPU;
    ``auto`` picks bf16 where supported); ``threads`` sets torch's CPU threads per process
    (``null``: torch's default; 1 is often fastest on a busy or small CPU).

    ``init_from`` starts a *fresh* run from trained weights (fine-tuning): an exported model
    folder or bundled name, a training checkpoint or a run folder (its latest checkpoint). The
    weights must fit the recipe's model exactly; a checkpoint's discriminator is taken too
    when the recipe has one. Optimisers, schedule and step count start afresh. ``--resume``
    ignores it (the checkpoint already holds the weights).

    ``freeze`` names submodules of the model (``encoder``, ``quantizer``, ``pitch_head``,
    dotted paths allowed) that a fine-tune leaves exactly as they are: the optimiser never
    sees their parameters and they run in eval mode, so codebooks are not restarted either.
    A frozen residual quantizer still draws its quantizer dropout, so a decoder trained
    behind it keeps learning every rate of the ladder. Freezing the encoder and quantizer of
    a trained tokenizer keeps its codes bit for bit: token files and priors made with it
    stay valid for the fine-tuned decoder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    seed: int = 0
    run_dir: str | None = None
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    init_from: str | None = None
    freeze: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (tuples become lists), for checkpoints and ``config.yaml``."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TrainConfig:
        """Inverse of :meth:`to_dict`, with the same strict checks as a recipe file."""
        return config_from_dict(d, source)


_CHOICES = {
    "optim.schedule": ("cosine", "constant"),
    "precision": ("auto", "fp32", "bf16"),
}


def _to_plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """:func:`audiotok.config.coerce` (the one value checker), as a :class:`UserError`."""
    try:
        return coerce(value, hint, key, source)
    except ConfigError as e:
        raise UserError(str(e)) from None


def _build(cls: type, d: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise UserError(f"'{where}' in {source} must be a mapping, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in d:
        if key not in fields:
            raise UserError(
                f"unknown key '{prefix}{key}' in {source} "
                f"(expected one of: {', '.join(sorted(fields))})"
            )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.", source)
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}", source)
            choices = _CHOICES.get(f"{prefix}{key}")
            if choices and kwargs[key] not in choices:
                raise UserError(
                    f"'{prefix}{key}' in {source} must be one of {', '.join(choices)}, "
                    f"got {value!r}"
                )
    return cls(**kwargs)


def _check_values(cfg: TrainConfig, source: str) -> None:
    positive = {
        "data.batch_size": cfg.data.batch_size,
        "data.segment_seconds": cfg.data.segment_seconds,
        "optim.lr": cfg.optim.lr,
        "optim.max_steps": cfg.optim.max_steps,
        "checkpoint.every": cfg.checkpoint.every,
        "checkpoint.keep_last": cfg.checkpoint.keep_last,
        "log.every": cfg.log.every,
    }
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"'{key}' in {source} must be > 0, got {value}")
    non_negative = {
        "data.num_workers": cfg.data.num_workers,
        "optim.warmup_steps": cfg.optim.warmup_steps,
        "optim.weight_decay": cfg.optim.weight_decay,
        "discriminator.start_step": cfg.discriminator.start_step,
        "validation.every": cfg.validation.every,
        "validation.num_batches": cfg.validation.num_batches,
        "validation.num_audio_samples": cfg.validation.num_audio_samples,
        **{
            f"loss.{f.name}": getattr(cfg.loss, f.name)
            for f in dataclasses.fields(LossConfig)
            if f.type in ("float", float)
        },
    }
    for key, value in non_negative.items():
        if value < 0:
            raise UserError(f"'{key}' in {source} must be >= 0, got {value}")
    budget = cfg.optim.max_seconds
    if budget is not None and budget <= 0:
        raise UserError(f"'optim.max_seconds' in {source} must be > 0 or null, got {budget}")
    crop = cfg.discriminator.segment_seconds
    if crop is not None and crop <= 0:
        raise UserError(f"'discriminator.segment_seconds' in {source} must be > 0, got {crop}")
    if cfg.threads is not None and cfg.threads < 1:
        raise UserError(f"'threads' in {source} must be >= 1 or null, got {cfg.threads}")
    if not 0.0 <= cfg.optim.min_lr_ratio <= 1.0:
        raise UserError(f"'optim.min_lr_ratio' in {source} must be in [0, 1]")
    if not cfg.model.family:
        raise UserError(f"'model.family' in {source} is empty")


def _check_kwargs(options: dict[str, Any] | None, target: Any, key: str, source: str) -> None:
    if not options:
        return
    params = inspect.signature(target).parameters
    allowed = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD} - {"channels"}
    for name in options:
        if name not in allowed:
            raise UserError(
                f"unknown key '{key}.{name}' in {source} "
                f"(expected one of: {', '.join(sorted(allowed))})"
            )


def _check_free_form(cfg: TrainConfig, source: str) -> None:
    """Check the keys of the free-form dicts against the classes they configure."""
    from audiotok.audio.discriminators import (
        MultiPeriodDiscriminator,
        MultiScaleSTFTDiscriminator,
    )
    from audiotok.audio.losses import (
        MultiResolutionSTFTLoss,
        MultiScaleMelLoss,
        PhaseDerivativeLoss,
    )
    from audiotok.hub import MODEL_FAMILIES

    family = MODEL_FAMILIES.get(cfg.model.family)
    if family is None:
        raise UserError(
            f"unknown model family '{cfg.model.family}' in {source} "
            f"(expected one of: {', '.join(sorted(MODEL_FAMILIES))})"
        )
    names = {f.name for f in dataclasses.fields(family.config_class)}
    for name in cfg.model.config:
        if name not in names:
            raise UserError(
                f"unknown key 'model.config.{name}' in {source} "
                f"(expected one of: {', '.join(sorted(names))})"
            )
    _check_kwargs(
        cfg.discriminator.msstft, MultiScaleSTFTDiscriminator, "discriminator.msstft", source
    )
    _check_kwargs(cfg.discriminator.mpd, MultiPeriodDiscriminator, "discriminator.mpd", source)
    _check_kwargs(cfg.loss.mel_options, MultiScaleMelLoss, "loss.mel_options", source)
    _check_kwargs(cfg.loss.stft_options, MultiResolutionSTFTLoss, "loss.stft_options", source)
    _check_kwargs(cfg.loss.phase_options, PhaseDerivativeLoss, "loss.phase_options", source)
    if cfg.loss.image:
        from audiotok.image.vqgan import VQGANLossConfig

        names = {f.name for f in dataclasses.fields(VQGANLossConfig)}
        for name in cfg.loss.image:
            if name not in names:
                raise UserError(
                    f"unknown key 'loss.image.{name}' in {source} "
                    f"(expected one of: {', '.join(sorted(names))})"
                )


def config_from_dict(d: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build a :class:`TrainConfig` from nested plain dicts.

    Args:
        d: the parsed recipe.
        source: where ``d`` came from, used in error messages (a file name, ``--set``).

    Raises:
        UserError: one line naming the first unknown key or badly typed value.
    """
    cfg = _build(TrainConfig, d, "", source)
    _check_values(cfg, source)
    _check_free_form(cfg, source)
    return cfg


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"bad --set {item!r}: expected key.path=value, e.g. optim.lr=3e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise UserError(f"bad --set {item!r}: value is not valid YAML ({exc.problem})") from None
    return key.split("."), value


def _is_mapping_hint(hint: Any) -> bool:
    if typing.get_origin(hint) is dict:
        return True
    return any(typing.get_origin(a) is dict for a in typing.get_args(hint))


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set key.path=value`` overrides to a parsed recipe (a new dict is returned).

    Keys inside sections are checked against the schema here, so a typo is reported as
    ``unknown key 'optim.lrr' in --set optim.lrr=1``; keys below free-form dicts
    (``model.config.channels``) are created as needed and checked when the model is built.
    """
    out = copy.deepcopy(d)
    for item in overrides:
        path, value = _parse_override(item)
        cls: Any = TrainConfig
        for i, part in enumerate(path):
            names = {f.name for f in dataclasses.fields(cls)}
            if part not in names:
                raise UserError(f"unknown key '{'.'.join(path[: i + 1])}' in --set {item}")
            hint = typing.get_type_hints(cls)[part]
            if dataclasses.is_dataclass(hint):
                cls = hint
                continue
            if i < len(path) - 1 and not _is_mapping_hint(hint):
                raise UserError(f"'{'.'.join(path[: i + 1])}' is not a mapping in --set {item}")
            break
        else:
            if dataclasses.is_dataclass(cls) and not isinstance(value, dict):
                raise UserError(f"'{'.'.join(path)}' is a section; set its keys in --set {item}")
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def _corpus_default() -> str:
    from audiotok.data.corpus import corpus_dir

    return str(corpus_dir())


#: Variables a recipe may use unset: name -> function computing the default.
BUILTIN_VARIABLES: dict[str, typing.Callable[[], str]] = {"AUDIOTOK_CORPUS": _corpus_default}

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, source: str = "config") -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of a parsed recipe.

    Recipes name their data as ``${AUDIOTOK_CORPUS}/train.jsonl`` so that users point them at
    their own copy with one environment variable instead of editing the file. A few variables
    have a built-in default computed here (:data:`BUILTIN_VARIABLES`: ``AUDIOTOK_CORPUS`` is
    the user's cache folder, see :func:`audiotok.data.corpus.corpus_dir`); an explicit
    ``:-default`` in the recipe wins over it. Any other variable that is unset and has no
    default is an error, never an empty string.

    Raises:
        UserError: a ``${NAME}`` with ``NAME`` unset, no ``:-default`` and no built-in one.
    """
    if isinstance(value, dict):
        return {k: expand_env(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, source) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if os.environ.get(name):  # as in the shell's ${NAME:-default}, empty means unset
            return os.environ[name]
        if default is not None:
            return default
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]()
        raise UserError(
            f"{source}: ${{{name}}} is used but the environment variable {name} is not set"
        )

    return _ENV_VAR.sub(substitute, value)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line N, column M: <problem> (<context> on line L)`` from a PyYAML error, whose own
    text spans several lines and quotes the input."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    out = f"line {mark.line + 1}, column {mark.column + 1}: {' '.join(str(problem).split())}"
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and cmark.line != mark.line:
        what = re.sub(r"^while \w+ ", "", str(context))  # "while parsing a flow sequence"
        out += f" (in {what} started on line {cmark.line + 1})"
    return out


def _key_lines(text: str) -> dict[str, int]:
    """Dotted key path -> 1-based line of that key in a recipe's YAML text."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines.setdefault(prefix + key.value, key.start_mark.line + 1)
                    walk(value, f"{prefix}{key.value}.")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, "")
    return lines


def _add_line(message: str, name: str, lines: dict[str, int]) -> str:
    """``'optim.lrr' in recipe.yaml`` -> ``'optim.lrr' in recipe.yaml line 12``."""
    found = re.search(rf"'([^']+)' in {re.escape(name)}", message)
    if found is None:
        return message
    key = found.group(1)
    while key and key not in lines:  # a key below a free-form dict: its nearest parent
        key = key.rpartition(".")[0]
    if not key:
        return message
    return f"{message[: found.end()]} line {lines[key]}{message[found.end() :]}"


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Read a recipe YAML, apply ``--set`` overrides and validate everything.

    ``run_dir`` defaults to ``runs/<recipe file stem>``.

    Args:
        path: the recipe file.
        overrides: ``["optim.lr=3e-4", "data.train=corpus/train.jsonl", ...]``.

    Raises:
        UserError: missing/unreadable file, invalid YAML, unknown key or bad value.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path.name} must be a YAML mapping of sections")
    try:  # report the file's own mistakes against the file, with their line
        config_from_dict(raw, path.name)
    except UserError as exc:
        raise UserError(_add_line(str(exc), path.name, _key_lines(text))) from None
    if overrides:
        raw = apply_overrides(raw, overrides)
    raw = expand_env(raw, path.name)
    if raw.get("run_dir") is None:
        raw = {**raw, "run_dir": str(Path("runs") / path.stem)}
    return config_from_dict(raw, f"{path.name} (with --set)" if overrides else path.name)
