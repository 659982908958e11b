"""Bulk tokenization: a corpus of audio files to token shards, resumable and multi-process.

:func:`tokenize_corpus` is what ``audiotok tokenize INPUTS -o tokens/`` runs: it encodes
every file with a tokenizer (streaming, bounded memory: :meth:`AudioTokenizer.encode_file`)
and appends the codes to :class:`~audiotok.data.shards.ShardWriter` shards. Priors then train
on the shards without running the codec inside their training loop.

- **Inputs** are folders, audio files, file lists or JSONL manifests
  (:func:`audiotok.data.manifest.load_entries`); a manifest's fields (``kind``,
  ``speaker``, ``language``, ``source``...) are carried into the shard rows.
- **Resumable:** files already in the folder's rows are skipped, so a killed run continues
  where it stopped (see :mod:`audiotok.data.shards` for why nothing is written twice).
- **Bad files** are reported (one ``(path, problem)`` each) and the rest goes on.
- **Scale-out:** under ``torchrun --nproc_per_node N`` each rank takes files ``rank::N`` of
  the sorted list and writes its own shards; rank 0 writes ``meta.json`` after a barrier.
  A file's codes do not depend on which rank or how many ranks encode it (the tokenizer's
  codes are independent of chunking and batching).
- The dev split is by source recording (the manifest's ``source``, else the path).
- **Images** (:func:`tokenize_images`, what the command runs for an image tokenizer): any
  source :mod:`audiotok.data.images` reads (folders, lists, manifests, IDX, CIFAR, arrays);
  one shard row per image holding its raster-scanned ``(H' W', K)`` codes, its class label
  and its key; the dev split is by image key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotok.data.manifest import ManifestEntry, load_entries
from audiotok.data.shards import ShardWriter, TokenizerInfo, read_rows, write_meta
from audiotok.errors import UserError

__all__ = ["TokenizeResult", "collect_entries", "tokenize_corpus", "tokenize_images"]


@dataclass
class TokenizeResult:
    """What :func:`tokenize_corpus` did on this rank.

    Attributes:
        out_dir: the token folder.
        encoded: files encoded now.
        skipped: files found already done (a resumed run).
        failed: ``(path, problem)`` of files that could not be encoded.
        frames: code frames written now.
        meta: ``meta.json`` (rank 0 only; else empty).
    """

    out_dir: Path
    encoded: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def collect_entries(inputs: Sequence[str | os.PathLike]) -> list[ManifestEntry]:
    """Every audio file named by ``inputs`` (folders, files, lists, manifests), sorted by
    path and without duplicates.

    Raises:
        UserError: an input that does not exist or holds no audio.
    """
    seen: dict[str, ManifestEntry] = {}
    for item in inputs:
        entries = load_entries(item)
        if not entries:
            raise UserError(f"{item}: no audio files found")
        for e in entries:
            seen.setdefault(str(Path(e.path)), e)
    return [seen[k] for k in sorted(seen)]


def _file_id(entry: ManifestEntry) -> str:
    return str(Path(entry.path))


def tokenize_corpus(
    tokenizer: Any,
    inputs: Sequence[str | os.PathLike] | Sequence[ManifestEntry],
    out_dir: str | os.PathLike,
    *,
    num_codebooks: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    dev_fraction: float = 0.02,
    shard_frames: int = 1 << 22,
    barrier: Callable[[], None] | None = None,
    on_file: Callable[[str, str | None], None] | None = None,
) -> TokenizeResult:
    """Encode a corpus into token shards under ``out_dir``.

    Args:
        tokenizer: an :class:`~audiotok.tokenizer.AudioTokenizer` (``encode_file``,
            ``model_id``, ``num_codebooks``, ``codebook_size``, ``frame_rate``).
        inputs: paths (folders, files, lists, manifests) or manifest entries.
        out_dir: the token folder; an existing one of the same tokenizer is resumed, one
            of another tokenizer is refused.
        num_codebooks: keep the first k codebooks (default: all).
        rank, world_size: this process's share of the files (``rank::world_size``).
        dev_fraction: share of source recordings in the dev split.
        shard_frames: frames per shard.
        barrier: called before rank 0 writes ``meta.json`` (DDP: wait for every rank).
        on_file: ``(path, problem or None)`` after each file, for progress and messages.

    Returns:
        :class:`TokenizeResult` of this rank.
    """
    entries = (
        list(inputs) if inputs and isinstance(inputs[0], ManifestEntry) else collect_entries(inputs)  # type: ignore[arg-type]
    )
    k = int(num_codebooks or tokenizer.num_codebooks)
    info = TokenizerInfo(
        model_id=str(tokenizer.model_id),
        num_codebooks=k,
        codebook_size=int(tokenizer.codebook_size),
        frame_rate=float(tokenizer.frame_rate),
    )
    writer = ShardWriter(
        out_dir, info, rank=rank, shard_frames=shard_frames, dev_fraction=dev_fraction
    )
    result = TokenizeResult(Path(out_dir))
    for entry in entries[rank::world_size]:
        file_id = _file_id(entry)
        if writer.has(file_id):
            result.skipped += 1
            continue
        try:
            codes, meta = tokenizer.encode_file(entry.path, num_codebooks=k)
        except (UserError, OSError, ValueError, RuntimeError) as e:
            problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            result.failed.append((entry.path, problem))
            if on_file is not None:
                on_file(entry.path, problem)
            continue
        source = entry.source or file_id
        fields = {"path": entry.path, "source": source, **entry.extra}
        fields["seconds"] = meta.original_length / max(meta.original_sample_rate, 1)
        array = codes[0].numpy() if codes.dim() == 3 else codes.numpy()
        writer.add(file_id, array, fields, split_key=source)
        result.encoded += 1
        result.frames += int(array.shape[1])
        if on_file is not None:
            on_file(entry.path, None)
    writer.flush()
    if barrier is not None:
        barrier()
    if rank == 0:
        result.meta = write_meta(out_dir, info)
    return result


def _image_batches(sources: list[Any], channels: int, batch_size: int):
    """``(keys, labels, names, images (B, C, H, W))`` of consecutive same-size images."""
    import torch

    from audiotok.data.images import ImageDataset

    for source in sources:
        data = ImageDataset(source, channels=channels)
        group: list[tuple[str, int, Any]] = []
        for j in range(len(data)):
            image, label = data[j]
            key = source.keys[data.indices[j]]
            if group and (len(group) == batch_size or group[0][2].shape != image.shape):
                keys, labels, images = zip(*group, strict=True)
                yield list(keys), list(labels), source.name, torch.stack(images)
                group = []
            group.append((key, int(label), image))
        if group:
            keys, labels, images = zip(*group, strict=True)
            yield list(keys), list(labels), source.name, torch.stack(images)


def tokenize_images(
    tokenizer: Any,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    dev_fraction: float = 0.02,
    batch_size: int = 256,
    shard_frames: int = 1 << 22,
    on_batch: Callable[[int], None] | None = None,
) -> TokenizeResult:
    """Encode images into token shards: one row per image, codes in raster order.

    Args:
        tokenizer: an image tokenizer (``model_id``, ``channels``, ``num_codebooks``,
            ``codebook_size``, ``encode(images (B, C, H, W) in [-1, 1]) -> (B, K, H', W')``).
        inputs: image sources :func:`audiotok.data.images.open_image_source` reads; class
            labels (IDX label files, class subfolders, list and manifest labels) are kept.
        out_dir: the token folder; an existing one of the same tokenizer is resumed.
        dev_fraction: share of images (by key) in the dev split.
        batch_size: images per encoder call.
        shard_frames: code rows per shard.
        on_batch: called with the number of images encoded so far.

    Returns:
        :class:`TokenizeResult`; ``frames`` counts code rows (``H' W'`` per image).

    Raises:
        UserError: an unreadable input, or images of another channel count.
    """
    import torch

    from audiotok.data.images import open_image_source

    sources = [open_image_source(p) for p in inputs]
    k = int(tokenizer.num_codebooks)
    info = TokenizerInfo(
        model_id=str(tokenizer.model_id),
        num_codebooks=k,
        codebook_size=int(tokenizer.codebook_size),
        frame_rate=0.0,
        modality="image",
        order="raster",
    )
    writer = ShardWriter(out_dir, info, shard_frames=shard_frames, dev_fraction=dev_fraction)
    result = TokenizeResult(Path(out_dir))
    shapes: set[tuple[int, int]] = set()
    for row in read_rows(out_dir):
        shapes.add(tuple(row["latent_shape"]))  # type: ignore[arg-type]
    for keys, labels, name, images in _image_batches(sources, int(tokenizer.channels), batch_size):
        todo = [i for i, key in enumerate(keys) if not writer.has(key)]
        result.skipped += len(keys) - len(todo)
        if not todo:
            continue
        with torch.no_grad():
            codes = tokenizer.encode(images[todo])  # (B, K, H', W')
        h, w = int(codes.shape[-2]), int(codes.shape[-1])
        shapes.add((h, w))
        flat = codes.reshape(codes.shape[0], k, h * w).cpu().numpy()  # raster order
        for j, i in enumerate(todo):
            fields = {"source": name, "latent_shape": [h, w], "size": list(images.shape[-2:])}
            if labels[i] >= 0:
                fields["label"] = labels[i]
            writer.add(keys[i], flat[j], fields)
        result.encoded += len(todo)
        result.frames += len(todo) * h * w
        if on_batch is not None:
            on_batch(result.encoded)
    writer.flush()
    if len(shapes) == 1:
        info = dataclasses.replace(info, latent_shape=next(iter(shapes)))
    result.meta = write_meta(out_dir, info)
    return result
