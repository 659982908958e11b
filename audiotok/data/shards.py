"""Token shards: the codes a prior trains on, written once, memory-mapped, never pickled.

Layout of a token folder (``audiotok tokenize INPUTS -o tokens/``)::

    tokens/
      meta.json                 format version, tokenizer (model id, K, V, frame rate),
                                shards with their frame counts and SHA-256, file count
      files-r0.jsonl            one row per encoded file: id, source path, split, shard,
                                offset, frames, and the manifest's fields (kind, speaker...)
      shard-r0-00000.npy        codes (T, K) of many files end to end, smallest uint dtype
      ...

Shards hold **raw codes**, not LM ids (patterns and vocabularies are the prior's business,
:mod:`audiotok.prior`), as ``(T, K)`` so that a window of frames is one contiguous slice of
the memory map (anchor: nanoGPT's uint16 memmaps, here with a dtype, a shape and a checksum
in a real ``.npy`` header). Files never straddle a shard, and a reader's windows never cross
a file's end.

Writing is resumable: a file's row is appended to ``files-r<rank>.jsonl`` only after the
shard holding it is complete on disk (``.npy`` written atomically), so a killed run restarts
at the first file without a row; the unfinished shard is simply written again. Each rank of
a ``torchrun`` job writes its own ``shard-r<rank>-*`` and ``files-r<rank>.jsonl``; the
reader reads every rank's files, so ``meta.json`` is a summary rank 0 writes at the end.

The dev split is by source file (a hash of the file's id), never by window.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.atomic import commit, create_temp
from audiotok.errors import UserError

__all__ = [
    "SHARD_FORMAT",
    "SHARD_VERSION",
    "TokenizerInfo",
    "ShardWriter",
    "TokenShards",
    "TokenWindows",
    "read_meta",
    "read_rows",
    "split_for",
    "write_meta",
]

SHARD_FORMAT = "audiotok-token-shards"
SHARD_VERSION = 1


@dataclass(frozen=True)
class TokenizerInfo:
    """What the codes mean: the tokenizer's id, ``K`` codebooks of ``V`` codes, frames/s.

    For images (``modality="image"``) a file is one image, its ``T = H' W'`` frames are the
    code grid's rows in ``order`` (``"raster"``: row by row, left to right), ``latent_shape``
    is ``(H', W')`` when every image has the same grid, and ``frame_rate`` is 0.
    """

    model_id: str
    num_codebooks: int
    codebook_size: int
    frame_rate: float
    modality: str = "audio"
    latent_shape: tuple[int, ...] = ()
    order: str = "time"

    def __post_init__(self) -> None:
        object.__setattr__(self, "latent_shape", tuple(int(n) for n in self.latent_shape or ()))

    @property
    def frames_per_item(self) -> int | None:
        """``H' W'`` of an image folder with one grid size, else None (audio: any length)."""
        return int(np.prod(self.latent_shape)) if self.latent_shape else None

    def to_dict(self) -> dict[str, Any]:
        """JSON fields."""
        return {
            "model_id": self.model_id,
            "num_codebooks": int(self.num_codebooks),
            "codebook_size": int(self.codebook_size),
            "frame_rate": float(self.frame_rate),
            "modality": self.modality,
            "latent_shape": list(self.latent_shape),
            "order": self.order,
        }


def split_for(key: str, dev_fraction: float, seed: int = 0) -> str:
    """``"dev"`` for a stable ``dev_fraction`` of keys (by SHA-256), else ``"train"``."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "dev" if int.from_bytes(digest[:8], "big") / 2**64 < dev_fraction else "train"


def _dtype_for(codebook_size: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if codebook_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ShardWriter:
    """Append codes of many files to ``(T, K)`` shards of about ``shard_frames`` frames.

    Args:
        out_dir: the token folder (created).
        info: the tokenizer the codes come from; an existing folder of another tokenizer is
            refused.
        rank: this process's rank (its own shard and row files).
        shard_frames: frames per shard before a new one starts.
        dev_fraction: share of files (by id) put in the dev split.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        info: TokenizerInfo,
        *,
        rank: int = 0,
        shard_frames: int = 1 << 22,
        dev_fraction: float = 0.02,
    ) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.info, self.rank = info, rank
        self.shard_frames, self.dev_fraction = int(shard_frames), float(dev_fraction)
        self.dtype = _dtype_for(info.codebook_size)
        if (self.dir / "meta.json").exists():
            old = read_meta(self.dir)["tokenizer"]
            if old["model_id"] != info.model_id:
                raise UserError(
                    f"{self.dir}: holds tokens of model {old['model_id']}, not {info.model_id} "
                    "(use another folder)"
                )
        elif rank == 0:  # the folder says whose codes it holds from the first moment on
            write_meta(self.dir, info)
        self.rows_path = self.dir / f"files-r{rank}.jsonl"
        self.done: set[str] = set()
        shards = [-1]
        if self.rows_path.exists():
            for row in _read_rows(self.rows_path):
                self.done.add(row["id"])
                shards.append(int(row["shard"].rsplit("-", 1)[1].split(".")[0]))
        self.shard_index = max(shards) + 1
        self._pending: list[tuple[np.ndarray, dict[str, Any]]] = []
        self._pending_frames = 0

    def has(self, file_id: str) -> bool:
        """True when ``file_id`` was written by an earlier (possibly killed) run."""
        return file_id in self.done

    def add(
        self,
        file_id: str,
        codes: np.ndarray,
        fields: dict[str, Any] | None = None,
        *,
        split_key: str | None = None,
    ) -> None:
        """Queue one file's codes ``(K, T)``; shards are written as they fill.

        ``split_key`` decides the split (default ``file_id``): pass the source recording so
        that every cut of one recording lands on the same side.

        Raises:
            ValueError: codes of the wrong shape or range.
        """
        k, v = self.info.num_codebooks, self.info.codebook_size
        if codes.ndim != 2 or codes.shape[0] != k or codes.shape[1] < 1:
            raise ValueError(f"expected codes (K={k}, T>=1), got {codes.shape}")
        if codes.min() < 0 or codes.max() >= v:
            raise ValueError(f"codes out of range [0, {v})")
        row = {"id": file_id, "split": split_for(split_key or file_id, self.dev_fraction)}
        row.update(fields or {})
        self._pending.append((np.ascontiguousarray(codes.T.astype(self.dtype)), row))
        self._pending_frames += codes.shape[1]
        if self._pending_frames >= self.shard_frames:
            self.flush()

    def flush(self) -> None:
        """Write the queued files as one shard, then record their rows."""
        if not self._pending:
            return
        name = f"shard-r{self.rank}-{self.shard_index:05d}.npy"
        dest = self.dir / name
        fd, tmp = create_temp(dest)
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.concatenate([c for c, _ in self._pending]), allow_pickle=False)
        commit(tmp, dest, force=True)  # a killed run's unrecorded shard is rewritten
        offset, lines = 0, []
        for codes, row in self._pending:
            row.update(shard=name, offset=offset, frames=int(codes.shape[0]))
            offset += codes.shape[0]
            lines.append(json.dumps(row, ensure_ascii=False))
            self.done.add(row["id"])
        with open(self.rows_path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._pending, self._pending_frames = [], 0
        self.shard_index += 1


def write_meta(out_dir: str | os.PathLike, info: TokenizerInfo) -> dict[str, Any]:
    """Summarise every rank's shards into ``meta.json`` (checksums included)."""
    folder = Path(out_dir)
    rows = [r for p in sorted(folder.glob("files-r*.jsonl")) for r in _read_rows(p)]
    shards: dict[str, int] = {}
    for r in rows:
        shards[r["shard"]] = shards.get(r["shard"], 0) + int(r["frames"])
    meta = {
        "format": SHARD_FORMAT,
        "format_version": SHARD_VERSION,
        "tokenizer": info.to_dict(),
        "layout": "(T, K) raw codes per shard; files end to end; see files-r*.jsonl",
        "files": len(rows),
        "frames": int(sum(shards.values())),
        "shards": [
            {"name": n, "frames": f, "sha256": _sha256(folder / n)}
            for n, f in sorted(shards.items())
        ],
    }
    dest = folder / "meta.json"
    fd, tmp = create_temp(dest)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    commit(tmp, dest, force=True)
    return meta


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``meta.json`` of a token folder, checked.

    Raises:
        UserError: missing, unreadable, another format or a newer version.
    """
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder}: not a token folder (no meta.json)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT:
        raise UserError(f"{path}: not an audiotok token folder")
    if int(meta.get("format_version", 0)) > SHARD_VERSION:
        raise UserError(f"{path}: made by a newer audiotok (format {meta['format_version']})")
    return meta


def read_rows(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Every rank's file rows of a token folder (``files-r*.jsonl``), recorded or not in
    ``meta.json`` yet (a resumed run)."""
    return [r for p in sorted(Path(folder).glob("files-r*.jsonl")) for r in _read_rows(p)]


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                # a torn last line of a killed run: everything before it stands
                raise UserError(f"{path}:{n}: damaged row (delete it to resume)") from None


class TokenShards:
    """Read a token folder: per-file codes from memory-mapped shards.

    Args:
        folder: the token folder.
        model_id: when given, shards of another tokenizer are refused.
        split: ``"train"``, ``"dev"`` or None (all files).
        verify: check each shard's SHA-256 against ``meta.json`` (reads every byte).

    Raises:
        UserError: not a token folder, another tokenizer, a missing or damaged shard.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        model_id: str | None = None,
        split: str | None = None,
        verify: bool = False,
    ) -> None:
        self.dir = Path(folder)
        self.meta = read_meta(self.dir)
        tok = self.meta["tokenizer"]
        if model_id is not None and tok["model_id"] != model_id:
            raise UserError(
                f"{self.dir}: tokens of model {tok['model_id']}, but the model is {model_id}"
            )
        self.info = TokenizerInfo(**tok)
        listed = {s["name"]: s for s in self.meta["shards"]}
        self.files = [
            r
            for p in sorted(self.dir.glob("files-r*.jsonl"))
            for r in _read_rows(p)
            if r["shard"] in listed and (split is None or r["split"] == split)
        ]
        self._maps: dict[str, np.ndarray] = {}
        for name in sorted({r["shard"] for r in self.files}):
            path = self.dir / name
            if verify and _sha256(path) != listed[name]["sha256"]:
                raise UserError(f"{path}: checksum differs from meta.json (damaged shard)")
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise UserError(f"{path}: unreadable shard ({e})") from None
            if arr.ndim != 2 or arr.shape[1] != self.info.num_codebooks:
                raise UserError(f"{path}: expected (T, {self.info.num_codebooks}) codes")
            if arr.shape[0] != listed[name]["frames"]:
                raise UserError(f"{path}: {arr.shape[0]} frames, meta.json says otherwise")
            self._maps[name] = arr

    def __len__(self) -> int:
        return len(self.files)

    def codes(self, i: int, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Codes ``(K, n)`` of file ``i`` from frame ``start`` (all remaining if None)."""
        row = self.files[i]
        n = row["frames"] - start if frames is None else frames
        if start < 0 or n < 0 or start + n > row["frames"]:
            raise IndexError(f"frames [{start}, {start + n}) outside file of {row['frames']}")
        begin = row["offset"] + start
        return np.asarray(self._maps[row["shard"]][begin : begin + n]).T


class TokenWindows(Dataset):
    """Random windows of ``frames`` code frames, each inside one file, for prior training.

    Item ``i`` of epoch ``e`` is a function of ``(seed, e, i)`` only (the same on every
    rank and worker): a file drawn with probability proportional to its usable windows,
    then a start inside it. Files shorter than ``frames`` are skipped (counted in
    ``skipped``). With ``train=False`` windows are fixed: the first ``frames`` of each file.

    Returns ``(K, frames)`` long tensors, or ``(codes, label)`` pairs when ``label_field``
    names a row field (the class of an image; ``-1`` where a row has none).
    """

    def __init__(
        self,
        shards: TokenShards,
        frames: int,
        *,
        num_examples: int | None = None,
        seed: int = 0,
        train: bool = True,
        label_field: str | None = None,
    ) -> None:
        self.shards, self.frames, self.seed, self.train = shards, int(frames), seed, train
        self.label_field = label_field
        lengths = np.array([r["frames"] for r in shards.files], dtype=np.int64)
        self.usable = np.flatnonzero(lengths >= self.frames)
        self.skipped = len(lengths) - len(self.usable)
        if len(self.usable) == 0:
            raise UserError(
                f"{shards.dir}: no file has {self.frames} frames (windows of "
                f"{self.frames / shards.info.frame_rate:.2f} s); use shorter windows"
            )
        weights = (lengths[self.usable] - self.frames + 1).astype(np.float64)
        self.cdf = np.cumsum(weights) / weights.sum()
        self.num_examples = int(num_examples or len(self.usable))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the windows of another epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_examples if self.train else len(self.usable)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        if not self.train:
            f, start = int(self.usable[i]), 0
        else:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            pick = min(int(np.searchsorted(self.cdf, rng.random())), len(self.usable) - 1)
            f = int(self.usable[pick])
            start = int(rng.integers(0, self.shards.files[f]["frames"] - self.frames + 1))
        codes = torch.from_numpy(self.shards.codes(f, start, self.frames).astype(np.int64))
        if self.label_field is None:
            return codes
        label = self.shards.files[f].get(self.label_field)
        return codes, int(label) if label is not None else -1
