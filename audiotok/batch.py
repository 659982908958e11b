"""Batch encode and decode of many files: what ``audiotok encode`` and ``audiotok decode`` do.

Library functions that Python users call too (``audiotok.encode_files``,
``audiotok.decode_files``). Folders are searched recursively and globs expanded
(:func:`expand_inputs`); outputs go beside each input, into an ``out`` folder (mirroring
input folders) or to the one file ``out`` names (:func:`output_is_file`), and decode never
names a user's recording as its output (:func:`decoded_name`), so ``force`` replaces only
what the batch writes. A bad batch (``out`` of the wrong kind, an unknown format or bitrate)
raises :class:`~audiotok.errors.UserError` before any file is touched; a bad file becomes one
line (``<file>: <problem>``) in its :class:`FileResult` and the batch goes on. A
:class:`BatchListener` follows the batch as it runs (the CLI draws progress bars and prints
each failure with it).

Both functions serve both modalities: the tokenizer's ``modality`` sends image models to
:mod:`audiotok.image_batch` (images <-> ``(K, H', W')`` token files and PNGs). Without a
model, decode takes it from the token file (:func:`audiotok.hub.bundled_name_for`: the
bundled model that made it; audio tokens default to ``"default"``). The shared plumbing is
in :mod:`audiotok.batch_core`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotok.batch_core import (
    TOKEN_SUFFIXES,
    BatchListener,
    BatchResult,
    FileResult,
    Progress,
    error_line,
    expand_inputs,
    output_is_file,
    plan_jobs,
    run_jobs,
)
from audiotok.batch_core import decoded_name as _decoded_name
from audiotok.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from audiotok.tokenizer.audio import AudioTokenizer
    from audiotok.tokenizer.image import ImageTokenizer

__all__ = [
    "TOKEN_SUFFIXES",
    "FileResult",
    "BatchResult",
    "BatchListener",
    "encode_files",
    "decode_files",
    "error_line",
    "expand_inputs",
    "output_is_file",
    "decoded_name",
]

PathLike = str | os.PathLike


def decoded_name(dest: Path) -> Path:
    """``dest`` (``<stem>.wav``), or ``<stem>.decoded.wav`` when ``dest`` holds something
    audiotok did not write (a recording, a folder): decode never names a user's file as its
    output, so ``force`` cannot replace it."""
    from audiotok.audio_io import written_by_audiotok

    return _decoded_name(dest, written_by_audiotok)


def _load(tokenizer: Any) -> Any:
    if isinstance(tokenizer, str | os.PathLike):
        from audiotok import hub

        return hub.load(os.fspath(tokenizer))
    return tokenizer


def _model_of(inputs: Sequence[PathLike] | PathLike) -> str:
    """The model for tokens decoded without one: the bundled model whose id the first token
    file names, else ``"default"`` (audio tokens, bare arrays, unknown ids: decode then says
    which model made them)."""
    from audiotok import hub
    from audiotok.codes import read_codes

    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    found, _ = expand_inputs(items, TOKEN_SUFFIXES)
    for src, _rel in found[:1]:
        try:
            _, meta = read_codes(src)
        except UserError:
            break
        if meta is not None:
            return hub.bundled_name_for(meta.model_id) or "default"
    return "default"


def encode_files(
    inputs: Sequence[PathLike] | PathLike,
    tokenizer: AudioTokenizer | ImageTokenizer | PathLike = "default",
    *,
    out: PathLike | None = None,
    num_codebooks: int | None = None,
    bitrate: float | None = None,
    token_format: str = "npy",
    force: bool = False,
    listener: BatchListener | None = None,
    lm: Any = None,
    lm_context: int | None = None,
) -> BatchResult:
    """Encode audio files to token files (codes ``(K, T')`` + metadata), in bounded memory;
    with an image model, image files to ``(K, H', W')`` token files
    (:func:`audiotok.image_batch.encode_image_files`).

    Args:
        inputs: audio (or image) files, folders (searched recursively) or globs.
        tokenizer: an :class:`~audiotok.tokenizer.AudioTokenizer` or ``ImageTokenizer``, or
            a bundled model name (``"default"``, ``"fmnist"``) or an exported model folder.
        out: a folder to write into (mirroring input folders), or the ``.npy``/``.npz`` file
            for one input; default: ``<stem>.npy`` beside each input.
        num_codebooks, bitrate: codebooks to keep, or a kbps rung of the model's ladder.
        token_format: ``"npy"`` (plain array + trailer) or ``"npz"``.
        force: replace existing token files.
        listener: follows the batch (progress, failures as they happen).
        lm: a GPT prior over this tokenizer's codes (object, export folder, or ``"default"``
            for the model's bundled prior): write ``<stem>.atlm`` files, arithmetic-coded
            under the prior (:mod:`audiotok.lmcodes`), with the prior's K codebooks.
        lm_context: frames of context the prior codes with (default: its own context).

    Returns:
        Every file's outcome; with ``num_codebooks``, ``frame_rate`` and ``bitrate`` (kbps).

    Raises:
        UserError: a bad format, bitrate, codebook count, model or ``out``; bad files are
            reported in the result instead.
    """
    from audiotok.atomic import check_destination
    from audiotok.audio_io import AUDIO_EXTENSIONS
    from audiotok.codes import write_codes
    from audiotok.lmcodes import SUFFIX as LM_SUFFIX
    from audiotok.lmcodes import write_lm_file

    if token_format not in ("npy", "npz"):
        raise UserError(f"--format must be npy or npz, got {token_format!r}")
    listener = listener or BatchListener()
    tok = _load(tokenizer)
    if tok.modality == "image":
        from audiotok.image_batch import encode_image_files

        if bitrate is not None:
            raise UserError("--bitrate is for audio models; an image model has one rate")
        return encode_image_files(
            inputs,
            tok,
            out=out,
            num_codebooks=num_codebooks,
            token_format=token_format,
            force=force,
            listener=listener,
        )
    prior = None if lm is None else load_lm_prior(lm, tokenizer, tok)
    if prior is not None:
        if token_format != "npy":
            raise UserError("--lm writes .atlm files; leave out --format")
        k = prior.config.num_codebooks
        if (num_codebooks or k) != k or bitrate not in (None, tok.bitrates[k - 1]):
            raise UserError(f"--lm: the prior codes exactly {k} codebooks; drop -k/--bitrate")
    else:
        k = tok.num_codebooks_for(num_codebooks=num_codebooks, bitrate=bitrate)
    suffix = LM_SUFFIX if prior is not None else "." + token_format
    outputs = frozenset({LM_SUFFIX}) if prior is not None else TOKEN_SUFFIXES
    jobs, failed, single = plan_jobs(inputs, out, AUDIO_EXTENSIONS, outputs, suffix, listener)
    if single and token_format == "npz" and Path(out).suffix.lower() != ".npz":  # type: ignore[arg-type]
        raise UserError(f"{out}: --format npz needs a .npz file name")

    def work(src: Path, to: Path, progress: Progress | None) -> FileResult:
        if src.is_file():  # an existing output or a folder in the way: before the slow part
            check_destination(to, force)
        codes, meta = tok.encode_file(src, num_codebooks=k, progress=progress)
        if prior is not None:
            write_lm_file(to, codes, prior, meta, context=lm_context, force=force)
        else:
            write_codes(to, codes, meta, force=force)
        return FileResult(src, to, seconds=meta.length / meta.sample_rate, tokens=codes.numel())

    results = run_jobs(jobs, work, listener)
    rate = tok.bitrates[k - 1] if len(tok.bitrates) > 1 else tok.bitrate
    return BatchResult(tuple(failed + results), k, tok.frame_rate, rate)


def decode_files(
    inputs: Sequence[PathLike] | PathLike,
    tokenizer: AudioTokenizer | ImageTokenizer | PathLike | None = None,
    *,
    out: PathLike | None = None,
    original_rate: bool = True,
    force: bool = False,
    listener: BatchListener | None = None,
    lm: Any = None,
) -> BatchResult:
    """Decode token files to audio, at the source's sample rate, exact length and channels.

    Token files that audiotok wrote carry the source's rate, length and channel count; plain
    ``(K, T')`` arrays decode at the model's rate and channels. A mono model's output is
    copied into each channel of a stereo source (the channels are identical). Image tokens
    decode to PNGs at the original size (:func:`audiotok.image_batch.decode_image_files`).

    Args:
        inputs: token files (``.npy``/``.npz``), folders (searched recursively) or globs.
        tokenizer: an :class:`~audiotok.tokenizer.AudioTokenizer` or ``ImageTokenizer``, a
            bundled model name or an exported model folder; tokens from another model are
            refused. ``None``: the bundled model that made the first token file (its
            ``model_id``), else ``"default"``.
        out: the audio file for one input (written as given), or a folder; default: beside
            each input. Outputs are ``<stem>.wav``, or ``<stem>.decoded.wav`` where a
            ``<stem>.wav`` that audiotok did not write is in the way.
        original_rate: write the source's rate, length and channels (from the token file);
            ``False``: the model's rate and channels.
        force: replace the output file (never the source recording).
        listener: follows the batch (progress, failures as they happen).
        lm: the prior that wrote ``.atlm`` inputs (as for :func:`encode_files`); an
            ``.atlm`` file without it fails with one line.

    Returns:
        Every file's outcome (``kept`` names a recording that was left alone).

    Raises:
        UserError: a bad model or ``out``; bad files are reported in the result instead.
    """
    from audiotok.audio_io import AUDIO_EXTENSIONS, check_output_path
    from audiotok.codes import read_codes
    from audiotok.lmcodes import SUFFIX as LM_SUFFIX
    from audiotok.lmcodes import read_lm_file

    listener = listener or BatchListener()
    name = _model_of(inputs) if tokenizer is None else tokenizer
    tok = _load(name)
    if tok.modality == "image":
        from audiotok.image_batch import decode_image_files

        return decode_image_files(
            inputs, tok, out=out, original_size=original_rate, force=force, listener=listener
        )
    prior = None if lm is None else load_lm_prior(lm, name, tok)
    jobs, failed, single = plan_jobs(
        inputs, out, TOKEN_SUFFIXES | {LM_SUFFIX}, AUDIO_EXTENSIONS, ".wav", listener
    )
    kept: dict[Path, Path] = {}  # song.decoded.wav -> the song.wav (a recording) it avoided
    if not single:
        moved = [(src, decoded_name(to)) for src, to in jobs]
        kept = {new: old for (_, old), (_, new) in zip(jobs, moved, strict=True) if new != old}
        jobs = moved

    def work(src: Path, to: Path, progress: Progress | None) -> FileResult:
        if src.suffix.lower() != LM_SUFFIX:
            codes, meta = read_codes(src, tok)
        elif prior is None:
            raise UserError(f"{src}: LM-coded token file; pass --lm with the prior that wrote it")
        else:
            codes, meta = read_lm_file(src, prior, tok)
        check_output_path(to, force)
        length, rate, channels = (meta.length, None, None) if meta else (None, None, None)
        if meta and original_rate:
            length, rate = meta.original_length, meta.original_sample_rate
            channels = meta.original_channels
        tok.decode_to_file(
            codes,
            to,
            length=length,
            sample_rate=rate,
            channels=channels,
            force=force,
            progress=progress,
        )
        seconds = (length or codes.shape[-1] * tok.hop_length) / (rate or tok.sample_rate)
        return FileResult(src, to, seconds=seconds, kept=kept.get(to))

    return BatchResult(tuple(failed + run_jobs(jobs, work, listener)))


def load_lm_prior(lm: Any, model: Any, tok: Any) -> Any:
    """The GPT prior ``--lm`` names: a prior object, an export folder, or
    ``"default"`` (the prior bundled for the bundled ``model``); refused unless it models
    ``tok``'s codes (:func:`audiotok.generation.check_pair`)."""
    from audiotok.generation import check_pair
    from audiotok.image_generation import bundled_prior_dir

    prior = lm
    if isinstance(lm, str | os.PathLike):
        source: Any = lm
        if str(lm) == "default":
            source = bundled_prior_dir(model if isinstance(model, str) else "")
            if source is None:
                raise UserError(f"--lm default: no prior is bundled for model {model!r}")
        from audiotok.prior import load_prior

        prior = load_prior(source)
    if not hasattr(prior, "context_frames"):
        raise UserError("--lm needs an autoregressive (GPT) prior, not a masked one")
    check_pair(tok, prior)
    return prior
