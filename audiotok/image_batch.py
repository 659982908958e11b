"""Batch encode and decode of image files: what ``audiotok encode/decode`` do with an image model.

:func:`audiotok.batch.encode_files` and :func:`~audiotok.batch.decode_files` send image
tokenizers here, so the verbs, output names and ``--force`` rules are those of audio:

- encode: image files (png/jpg/jpeg/webp/bmp in any case; folders searched recursively,
  globs) -> ``<stem>.npy`` (or ``.npz``) holding codes ``(K, H', W')`` with the
  self-describing trailer (:class:`~audiotok.codes.ImageCodesMeta`: modality, original size,
  channels, downsampling factor, model id). Truncated, non-image or unsupported-mode files
  are reported one line each and the batch finishes the good ones.
- decode: token files -> ``<stem>.png`` at the original size and channel count (from the
  trailer; a bare ``(K, H', W')`` array decodes to the full code grid). Where a
  ``<stem>.png`` that audiotok did not write is in the way (usually the picture the tokens
  came from), the output is ``<stem>.decoded.png``: ``--force`` never replaces a source image.

Outputs are written atomically and never replace a file without ``force``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from audiotok.batch_core import (
    TOKEN_SUFFIXES,
    BatchListener,
    BatchResult,
    FileResult,
    Progress,
    decoded_name,
    plan_jobs,
    run_jobs,
)
from audiotok.errors import UserError
from audiotok.image_io import IMAGE_EXTENSIONS, written_by_audiotok
from audiotok.tokenizer.image import ImageTokenizer

__all__ = ["encode_image_files", "decode_image_files"]

PathLike = str | os.PathLike


def encode_image_files(
    inputs: Sequence[PathLike] | PathLike,
    tokenizer: ImageTokenizer,
    *,
    out: PathLike | None = None,
    num_codebooks: int | None = None,
    token_format: str = "npy",
    force: bool = False,
    listener: BatchListener | None = None,
) -> BatchResult:
    """Encode image files to token files (codes ``(K, H', W')`` + metadata).

    Args:
        inputs: image files, folders (searched recursively) or globs.
        tokenizer: the image tokenizer.
        out: a folder to write into (mirroring input folders), or the ``.npy``/``.npz`` file
            for one input; default: ``<stem>.npy`` beside each input.
        num_codebooks: codebooks to keep (residual quantizers only; default all).
        token_format: ``"npy"`` (plain array + trailer) or ``"npz"``.
        force: replace existing token files.
        listener: follows the batch (failures as they happen).

    Returns:
        Every file's outcome (``tokens`` = ``K * H' * W'`` per file), ``modality="image"``.

    Raises:
        UserError: a bad format, codebook count or ``out``; bad files are reported in the
            result instead.
    """
    from audiotok.atomic import check_destination
    from audiotok.codes import write_codes

    if token_format not in ("npy", "npz"):
        raise UserError(f"--format must be npy or npz, got {token_format!r}")
    k = tokenizer.num_codebooks if num_codebooks is None else int(num_codebooks)
    if not 1 <= k <= tokenizer.num_codebooks:
        raise UserError(f"--num-codebooks must be 1..{tokenizer.num_codebooks}, got {k}")
    if k != tokenizer.num_codebooks and not tokenizer.supports_partial_codebooks:
        raise UserError(
            f"--num-codebooks {k}: this model needs all {tokenizer.num_codebooks} codebooks"
        )
    listener = listener or BatchListener()
    jobs, failed, single = plan_jobs(
        inputs, out, IMAGE_EXTENSIONS, TOKEN_SUFFIXES, "." + token_format, listener
    )
    if single and token_format == "npz" and Path(out).suffix.lower() != ".npz":  # type: ignore[arg-type]
        raise UserError(f"{out}: --format npz needs a .npz file name")

    def work(src: Path, to: Path, progress: Progress | None) -> FileResult:
        if src.is_file():  # an existing output or a folder in the way: before decoding
            check_destination(to, force)
        codes, meta = tokenizer.encode_file(src, num_codebooks=k)
        write_codes(to, codes, meta, force=force)
        return FileResult(src, to, tokens=codes.numel())

    results = run_jobs(jobs, work, listener)
    return BatchResult(tuple(failed + results), k, modality="image")


def decode_image_files(
    inputs: Sequence[PathLike] | PathLike,
    tokenizer: ImageTokenizer,
    *,
    out: PathLike | None = None,
    original_size: bool = True,
    force: bool = False,
    listener: BatchListener | None = None,
) -> BatchResult:
    """Decode image token files to PNGs at the original size and channels.

    Args:
        inputs: token files (``.npy``/``.npz``), folders (searched recursively) or globs.
        tokenizer: the image tokenizer that made the tokens (others are refused).
        out: the image file for one input (written as given), or a folder; default: beside
            each input. Outputs are ``<stem>.png``, or ``<stem>.decoded.png`` where a
            ``<stem>.png`` that audiotok did not write is in the way.
        original_size: crop to the source's size and use its channel count (from the token
            file); ``False``: the full code grid, the model's channels.
        force: replace the output file (never a source image).
        listener: follows the batch (failures as they happen).

    Returns:
        Every file's outcome (``kept`` names a source image that was left alone).

    Raises:
        UserError: a bad ``out``; bad files are reported in the result instead.
    """
    from audiotok.codes import ImageCodesMeta, read_codes

    listener = listener or BatchListener()
    jobs, failed, single = plan_jobs(
        inputs, out, TOKEN_SUFFIXES, IMAGE_EXTENSIONS, ".png", listener
    )
    kept: dict[Path, Path] = {}  # x.decoded.png -> the x.png (a source image) it avoided
    if not single:
        moved = [(src, decoded_name(to, written_by_audiotok)) for src, to in jobs]
        kept = {new: old for (_, old), (_, new) in zip(jobs, moved, strict=True) if new != old}
        jobs = moved

    def work(src: Path, to: Path, progress: Progress | None) -> FileResult:
        codes, meta = read_codes(src, tokenizer)
        if meta is not None and not isinstance(meta, ImageCodesMeta):  # read_codes checks
            raise UserError(f"{src}: not image tokens")
        if to.exists() and not to.is_file():
            raise UserError(f"{to}: output is in the way (not a regular file)")
        size = channels = None
        if meta is not None and original_size:
            size, channels = (meta.height, meta.width), meta.original_channels
        tokenizer.decode_to_file(codes, to, size=size, channels=channels, force=force)
        return FileResult(src, to, tokens=int(codes.size), kept=kept.get(to))

    return BatchResult(tuple(failed + run_jobs(jobs, work, listener)), modality="image")
