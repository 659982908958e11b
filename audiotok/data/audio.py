"""Torch datasets of audio crops for codec training, and whole-file datasets for validation.

:class:`AudioDataset` serves fixed-length random crops. Which file and where to crop is a
pure function of ``(seed, epoch, index)`` (``numpy.random.default_rng([seed, epoch, index])``)
so that a run is reproducible, identical with any number of DataLoader workers, and resumable
from a checkpoint that stores the epoch and position.

Bad files never vanish silently. At construction every file's header is probed (in threads;
:class:`PreloadedAudioDataset` also decodes every file): each unusable one is dropped with a
``RuntimeWarning`` naming the file and the problem (one line in the CLI), then one with the
kept / dropped counts (:mod:`audiotok.data.report`), and listed in
:attr:`AudioDataset.dropped`; a source with no usable file left is a
:class:`~audiotok.errors.UserError`. A file whose header reads but whose audio does not
(truncated data, NaN samples) is found when a crop is first taken from it: it is reported
the same way, counted in :attr:`AudioDataset.num_skipped`, and the item comes from another
file chosen by the same seeded rule, so the output does not depend on worker layout.

Audio is converted with the rules of :mod:`audiotok.audio_io`: mean downmix / mono
duplication, soxr HQ resampling to the model rate, optional RMS level normalisation of each
whole file (or of the crop for long files that are read by window).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.audio_io import normalize_level, read_audio, resample, to_channels
from audiotok.data.manifest import ManifestEntry, load_entries
from audiotok.data.report import (
    describe_source,
    no_usable_audio,
    probe_entries,
    problem_of,
    report_dropped,
    warn_dropped,
)
from audiotok.errors import UserError

log = logging.getLogger("audiotok.data")

Source = str | os.PathLike | Sequence[Any]


class AudioDataset(Dataset):
    """Random fixed-length crops from a folder, file list, manifest or list of entries.

    Args:
        source: folder, ``.txt`` list, ``.jsonl`` manifest, or a list of entries/dicts/paths.
        sample_rate: rate of the returned audio (files are resampled with soxr).
        channels: channel count of the returned audio (see :func:`to_channels`).
        segment_seconds: crop length; shorter files are zero-padded at the end.
        seed: base seed of the crop choice.
        loudness_db: RMS target (dBFS) for :func:`normalize_level`, or None.
        weighting: ``"duration"`` picks each item's file with probability proportional to
            its duration (so an hour of 2-second lines and an hour of 30-second tracks get
            equal crops); ``"file"`` maps item ``i`` to file ``i % n``.
        shares: the corpus mix, by a manifest field (``mix_by``): ``{"speech": 0.5,
            "music": 0.5}`` gives each group that share of the crops whatever its hours,
            duration-weighted within the group. Shares are normalised; a group with share
            0 is left out. Every file must have the field and every group a share
            (:func:`mix_weights`). Needs ``weighting="duration"``.
        mix_by: the manifest field that ``shares`` groups by (default ``"kind"``).
        num_examples: items per epoch; default the number of files.
        cache_size: decoded, converted files kept in an LRU cache (per worker process).
        max_full_read_seconds: longer files are read by window around the crop instead of
            whole (and not cached).

    Items are ``wav: (C, T)`` float32 tensors with ``T = round(segment_seconds * sample_rate)``.
    Call :meth:`set_epoch` before iterating each epoch (DataLoader workers copy the dataset
    when an iterator starts, so use ``persistent_workers=False`` or recreate the loader).
    """

    def __init__(
        self,
        source: Source,
        sample_rate: int,
        channels: int = 1,
        segment_seconds: float = 1.0,
        *,
        seed: int = 0,
        loudness_db: float | None = None,
        weighting: Literal["duration", "file"] = "duration",
        shares: Mapping[str, float] | None = None,
        mix_by: str = "kind",
        num_examples: int | None = None,
        cache_size: int = 64,
        max_full_read_seconds: float = 120.0,
    ) -> None:
        self.entries: list[ManifestEntry] = load_entries(source)
        if not self.entries:
            raise UserError(f"no audio files in {describe_source(source)}")
        self.source_name = describe_source(source)
        if weighting not in ("duration", "file"):
            raise ValueError(f"weighting must be 'duration' or 'file', got {weighting!r}")
        if shares is not None and weighting != "duration":
            raise ValueError("shares need weighting='duration'")
        self.shares = dict(shares) if shares is not None else None
        self.mix_by = mix_by
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.segment_length = int(round(segment_seconds * sample_rate))
        if self.segment_length < 1:
            raise ValueError(f"segment_seconds={segment_seconds} gives an empty crop")
        self.seed = int(seed)
        self.epoch = 0
        self.loudness_db = loudness_db
        self.weighting = weighting
        self.cache_size = int(cache_size)
        self.max_full_read_seconds = float(max_full_read_seconds)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bad: set[int] = set()
        self._cdf: np.ndarray | None = None
        total = len(self.entries)
        self.entries, self.dropped = probe_entries(self.entries)
        if self.entries:
            self._load()
        report_dropped(self.source_name, self.dropped, total)
        if not self.entries:
            raise UserError(no_usable_audio(self.source_name, self.dropped))
        self.num_examples = int(num_examples) if num_examples else len(self.entries)
        self._set_weights()

    def _load(self) -> None:
        """Hook run after the header probe (files are read lazily here)."""

    def _set_weights(self) -> None:
        """The duration CDF that :meth:`_pick_file` samples (``weighting="duration"``)."""
        if self.weighting == "duration":
            if self.shares is not None:
                weights = mix_weights(self.entries, self.shares, self.mix_by, self.source_name)
            else:
                weights = np.array([max(e.duration, 1e-3) for e in self.entries], np.float64)
            self._cdf = np.cumsum(weights) / weights.sum()

    @property
    def num_skipped(self) -> int:
        """Files that passed the header probe but failed to decode, met so far by this
        process (each DataLoader worker counts its own)."""
        return len(self._bad)

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of epoch ``epoch`` (call before iterating; safe to repeat)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_examples

    def describe(self) -> str:
        """One line for the training log: files, hours and, with ``shares``, the mix."""
        hours = sum(e.duration for e in self.entries) / 3600
        text = f"{len(self.entries)} files, {hours:.1f} h"
        if self.shares is not None and self._cdf is not None:
            weights = np.diff(self._cdf, prepend=0.0)
            text += f"; mix by {self.mix_by}: {describe_mix(self.entries, weights, self.mix_by)}"
        return text

    def _rng(self, index: int, attempt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, attempt])

    def _pick_file(self, rng: np.random.Generator, index: int, attempt: int) -> int:
        if self._cdf is not None:
            u = rng.random()
            return min(int(np.searchsorted(self._cdf, u, side="right")), len(self.entries) - 1)
        if attempt == 0:
            return index % len(self.entries)
        return int(rng.integers(len(self.entries)))

    # ---- loading -------------------------------------------------------------------------

    def _convert(self, wav: np.ndarray, sr: int) -> np.ndarray:
        wav = resample(to_channels(wav, self.channels), sr, self.sample_rate)
        if self.loudness_db is not None:
            wav = normalize_level(wav, self.loudness_db)
        return wav

    def load_file(self, file_index: int) -> np.ndarray:
        """Whole file ``file_index``, converted: ``(C, T) float32`` (LRU-cached).

        Raises:
            UserError: the file cannot be read.
        """
        if file_index in self._cache:
            self._cache.move_to_end(file_index)
            return self._cache[file_index]
        wav = self._convert(*read_audio(self.entries[file_index].path))
        if self.cache_size > 0:
            self._cache[file_index] = wav
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return wav

    def _crop_long(self, file_index: int, rng: np.random.Generator) -> np.ndarray:
        """Read only a window (plus resampler margin) of a long file."""
        e = self.entries[file_index]
        sr = e.sample_rate
        need = int(np.ceil(self.segment_length * sr / self.sample_rate))
        margin = sr // 20
        total = int(round(e.duration * sr))
        start = int(rng.integers(0, max(1, total - need + 1)))
        lo = max(0, start - margin)
        wav, file_sr = read_audio(e.path, start=lo, frames=need + margin + (start - lo))
        out = resample(to_channels(wav, self.channels), file_sr, self.sample_rate)
        off = int(round((start - lo) * self.sample_rate / file_sr))
        out = out[:, off : off + self.segment_length]
        if self.loudness_db is not None:
            out = normalize_level(out, self.loudness_db)
        return out

    def _crop(self, file_index: int, rng: np.random.Generator) -> np.ndarray:
        e = self.entries[file_index]
        if e.duration > self.max_full_read_seconds and e.sample_rate > 0:
            wav = self._crop_long(file_index, rng)
        else:
            wav = self.load_file(file_index)
            extra = wav.shape[-1] - self.segment_length
            start = int(rng.integers(0, extra + 1)) if extra > 0 else 0
            wav = wav[:, start : start + self.segment_length]
        if wav.shape[-1] < self.segment_length:
            wav = np.pad(wav, ((0, 0), (0, self.segment_length - wav.shape[-1])))
        return wav

    def _skip(self, file_index: int, err: UserError) -> None:
        if file_index not in self._bad:
            self._bad.add(file_index)
            path = self.entries[file_index].path
            self.dropped.append((path, problem_of(path, err)))
            warn_dropped(path, self.dropped[-1][1])

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self):
            raise IndexError(index)
        for attempt in range(max(32, 2 * len(self.entries))):
            rng = self._rng(index, attempt)
            file_index = self._pick_file(rng, index, attempt)
            if file_index in self._bad:
                continue
            try:
                return torch.from_numpy(np.ascontiguousarray(self._crop(file_index, rng)))
            except UserError as err:
                self._skip(file_index, err)
        path, problem = self.dropped[-1] if self.dropped else ("", "none")
        raise UserError(
            f"no readable audio in {self.source_name}: {len(self._bad)} of "
            f"{len(self.entries)} files failed to decode (last: {path}: {problem})"
        )


def mix_weights(
    entries: Sequence[ManifestEntry],
    shares: Mapping[str, float],
    by: str = "kind",
    source_name: str = "the training data",
) -> np.ndarray:
    """Per-file sampling weights that give each group of ``entries`` (by manifest field
    ``by``) its share of the crops, duration-weighted within the group. Sums to 1.

    Raises:
        UserError: a share is negative or not finite, all are 0, a file lacks the field, a
            group of the corpus has no share, or a share names a group the corpus lacks.
    """
    for name, share in shares.items():
        if not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
            raise UserError(f"data.shares: the share of {by} {name!r} must be >= 0, got {share!r}")
    if not any(share > 0 for share in shares.values()):
        raise UserError("data.shares: every share is 0, so no file would be drawn")
    groups = [entry_field(e, by) for e in entries]
    missing = sum(g is None for g in groups)
    if missing:
        raise UserError(
            f"data.shares: {missing} of {len(entries)} files of {source_name} have no "
            f"{by!r} field to mix by (set it in the manifest, or set data.mix_by)"
        )
    found = sorted({str(g) for g in groups})
    unshared = [g for g in found if g not in shares]
    if unshared:
        raise UserError(
            f"data.shares gives no share for {by} {', '.join(map(repr, unshared))} of "
            f"{source_name} (give it one, 0 to leave it out)"
        )
    absent = [g for g in shares if g not in found]
    if absent:
        raise UserError(
            f"data.shares names {by} {', '.join(map(repr, absent))}, which no file of "
            f"{source_name} has (it has: {', '.join(found)})"
        )
    dur = np.array([max(e.duration, 1e-3) for e in entries], dtype=np.float64)
    keys = np.array([str(g) for g in groups])
    weights = np.zeros_like(dur)
    total = sum(shares.values())
    for group in found:
        mask = keys == group
        weights[mask] = shares[group] / total * dur[mask] / dur[mask].sum()
    return weights


def describe_mix(entries: Sequence[ManifestEntry], weights: np.ndarray, by: str) -> str:
    """``"music 50% of crops (18.1 h), speech 50% (9.2 h)"``: what a mix does to a corpus."""
    parts = []
    for i, group in enumerate(sorted({str(entry_field(e, by)) for e in entries})):
        mask = np.array([str(entry_field(e, by)) == group for e in entries])
        hours = sum(e.duration for e, m in zip(entries, mask, strict=True) if m) / 3600
        share = 100 * float(weights[mask].sum() / weights.sum())
        parts.append(f"{group} {share:.0f}%{' of crops' if i == 0 else ''} ({hours:.1f} h)")
    return ", ".join(parts)


def entry_field(entry: ManifestEntry, name: str) -> Any:
    """A manifest field of ``entry``: ``source`` / ``path`` or one of its extra keys."""
    if name in ("source", "path"):
        return getattr(entry, name)
    return entry.extra.get(name)


class PreloadedAudioDataset(AudioDataset):
    """:class:`AudioDataset` with the whole (small) corpus decoded and converted once.

    Files are stored concatenated as one int16 array (half the memory of float32; the
    corpus is 16-bit anyway), so DataLoader workers started by fork share it. Loading uses
    ``num_threads`` threads (libsndfile and soxr release the GIL). Files that do not decode
    are dropped at load time, reported like unreadable headers and listed in
    :attr:`dropped`.

    Args:
        *args, **kwargs: as :class:`AudioDataset` (``cache_size`` and
            ``max_full_read_seconds`` are unused).
        num_threads: loader threads.
    """

    def __init__(self, *args: Any, num_threads: int = 2, **kwargs: Any) -> None:
        self.num_threads = int(num_threads)
        super().__init__(*args, **kwargs)
        log.info("preloaded %.2f h of audio", self._offsets[-1] / self.sample_rate / 3600)

    def _load(self) -> None:
        """Decode every file into one int16 array; drop the ones that do not decode."""
        self.max_full_read_seconds = float("inf")
        cache_size, self.cache_size = self.cache_size, 0

        def load(i: int) -> np.ndarray | UserError:
            try:
                wav = AudioDataset.load_file(self, i)
            except UserError as err:
                return err
            return np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)

        with ThreadPoolExecutor(max(1, self.num_threads)) as pool:
            loaded = list(pool.map(load, range(len(self.entries))))
        bad = [i for i, x in enumerate(loaded) if isinstance(x, UserError)]
        self.dropped += [
            (self.entries[i].path, problem_of(self.entries[i].path, loaded[i])) for i in bad
        ]
        keep = [i for i, x in enumerate(loaded) if not isinstance(x, UserError)]
        self.entries = [self.entries[i] for i in keep]
        arrays: list[np.ndarray | None] = [loaded[i] for i in keep]  # type: ignore[misc]
        del loaded
        lengths = np.array([x.shape[-1] for x in arrays], dtype=np.int64)  # type: ignore[union-attr]
        self._offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        data = np.zeros((self.channels, int(self._offsets[-1])), dtype=np.int16)
        for i in range(len(arrays)):
            data[:, self._offsets[i] : self._offsets[i + 1]] = arrays[i]
            arrays[i] = None  # free as we go: peak memory ~ 2x the int16 corpus
        self._data = data
        self.cache_size = cache_size  # unused after loading; kept for repr/inspection

    @property
    def num_samples(self) -> int:
        """Total preloaded samples per channel."""
        return int(self._offsets[-1])

    def _crop(self, file_index: int, rng: np.random.Generator) -> np.ndarray:
        a, b = int(self._offsets[file_index]), int(self._offsets[file_index + 1])
        extra = b - a - self.segment_length
        start = a + (int(rng.integers(0, extra + 1)) if extra > 0 else 0)
        wav = self._data[:, start : min(b, start + self.segment_length)].astype(np.float32)
        wav /= 32767.0
        if wav.shape[-1] < self.segment_length:
            wav = np.pad(wav, ((0, 0), (0, self.segment_length - wav.shape[-1])))
        return wav

    def load_file(self, file_index: int) -> np.ndarray:
        if file_index in self._bad:
            raise UserError(f"unreadable audio file: {self.entries[file_index].path}")
        a, b = self._offsets[file_index], self._offsets[file_index + 1]
        return self._data[:, a:b].astype(np.float32) / 32767.0
