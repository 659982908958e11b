"""Validation datasets (whole files or fixed crops), padding collate, and the dataset builder.

Validation must be the same every time it runs, so :class:`EvalAudioDataset` has no
randomness: item ``i`` is file ``i`` (in manifest order), whole or as one fixed crop.
:func:`build_audio_dataset` is the one entry point the trainer uses to turn a data source
and a few settings into the right dataset class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from audiotok.audio_io import normalize_level, read_audio, resample, to_channels
from audiotok.data.audio import AudioDataset, PreloadedAudioDataset, Source
from audiotok.data.manifest import ManifestEntry, load_entries
from audiotok.data.report import (
    describe_source,
    no_usable_audio,
    probe_entries,
    problem_of,
    report_dropped,
    warn_dropped,
)
from audiotok.data.synthetic import SyntheticAudioDataset, is_synthetic
from audiotok.errors import UserError


class EvalAudioDataset(Dataset):
    """Deterministic validation items: one per readable file.

    Args:
        source: folder, ``.txt`` list, ``.jsonl`` manifest, or a list of entries.
        sample_rate: rate of the returned audio.
        channels: channel count of the returned audio.
        segment_seconds: None for whole files (variable length; batch with
            :func:`pad_collate`), else one fixed crop of this length taken from the centre of
            each file (zero-padded at the end if the file is shorter).
        max_seconds: whole files longer than this are cut to their first ``max_seconds``.
        loudness_db: RMS target for :func:`normalize_level`, or None.
        max_files: keep only the first ``max_files`` files.

    Files whose header does not read are dropped at construction and reported (one line
    each, then the counts; see :mod:`audiotok.data.report`), so ``max_files`` counts
    readable files; a source with none is a :class:`~audiotok.errors.UserError`. A file
    that fails to decode later is reported once and, to keep the length fixed, replaced by
    silence of the crop length (or 1 s), counted in ``num_skipped``.
    Items are ``wav: (C, T)`` float32 tensors.
    """

    def __init__(
        self,
        source: Source,
        sample_rate: int,
        channels: int = 1,
        segment_seconds: float | None = None,
        *,
        max_seconds: float | None = None,
        loudness_db: float | None = None,
        max_files: int | None = None,
    ) -> None:
        name = describe_source(source)
        entries: list[ManifestEntry] = load_entries(source)
        if not entries:
            raise UserError(f"no audio files in {name}")
        self.entries, self.dropped = [], []
        total, step = 0, max_files or len(entries)
        while entries and len(self.entries) < step:  # probe only what max_files needs
            chunk, entries = (
                entries[: step - len(self.entries)],
                entries[step - len(self.entries) :],
            )
            kept, dropped = probe_entries(chunk)
            self.entries += kept
            self.dropped += dropped
            total += len(chunk)
        report_dropped(name, self.dropped, total)
        if not self.entries:
            raise UserError(no_usable_audio(name, self.dropped))
        self.source_name = name
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.segment_length = (
            None if segment_seconds is None else int(round(segment_seconds * sample_rate))
        )
        self.max_length = None if max_seconds is None else int(round(max_seconds * sample_rate))
        self.loudness_db = loudness_db
        self._bad: set[int] = set()

    @property
    def num_skipped(self) -> int:
        """Unreadable files met so far by this process."""
        return len(self._bad)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> torch.Tensor:
        try:
            wav, sr = read_audio(self.entries[index].path)
        except UserError as err:
            if index not in self._bad:
                self._bad.add(index)
                path = self.entries[index].path
                self.dropped.append((path, problem_of(path, err)))
                warn_dropped(path, self.dropped[-1][1])
            return torch.zeros(self.channels, self.segment_length or self.sample_rate)
        wav = resample(to_channels(wav, self.channels), sr, self.sample_rate)
        if self.loudness_db is not None:
            wav = normalize_level(wav, self.loudness_db)
        if self.segment_length is not None:
            extra = wav.shape[-1] - self.segment_length
            if extra > 0:
                wav = wav[:, extra // 2 : extra // 2 + self.segment_length]
            else:
                wav = np.pad(wav, ((0, 0), (0, -extra)))
        elif self.max_length is not None:
            wav = wav[:, : self.max_length]
        return torch.from_numpy(np.ascontiguousarray(wav))


def pad_collate(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``(C, T_i)`` items, zero-padding at the end.

    Returns:
        ``(wav (B, C, max T_i), lengths (B,) long)``.
    """
    lengths = torch.tensor([x.shape[-1] for x in items], dtype=torch.long)
    out = items[0].new_zeros(len(items), items[0].shape[0], int(lengths.max()))
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = x
    return out, lengths


def build_audio_dataset(
    source: Source,
    sample_rate: int,
    channels: int = 1,
    segment_seconds: float | None = 1.0,
    *,
    train: bool = True,
    preload: bool = False,
    seed: int = 0,
    loudness_db: float | None = None,
    **kwargs: Any,
) -> Dataset:
    """Make the dataset for a data source.

    Args:
        source: folder, ``.txt`` list, ``.jsonl`` manifest, list of entries, or
            ``"synthetic"`` (:class:`~audiotok.data.synthetic.SyntheticAudioDataset`: clips
            generated on the fly, the ``"dev"`` split when ``train`` is False).
        sample_rate: model rate.
        channels: model channels.
        segment_seconds: crop length (None with ``train=False``: whole files).
        train: True -> random crops (:class:`AudioDataset`, or
            :class:`PreloadedAudioDataset` with ``preload``); False -> :class:`EvalAudioDataset`.
        preload: decode the whole corpus into memory once (fast CPU training).
        seed: crop seed (training only).
        loudness_db: RMS target for level normalisation, or None.
        **kwargs: passed on to the dataset class.
    """
    if is_synthetic(source):
        n = kwargs.get("num_examples") if train else kwargs.get("max_files")
        return SyntheticAudioDataset(
            sample_rate,
            channels,
            segment_seconds,
            split="train" if train else "dev",
            seed=seed,
            num_examples=n,
            loudness_db=loudness_db,
        )
    if not train:
        return EvalAudioDataset(
            source, sample_rate, channels, segment_seconds, loudness_db=loudness_db, **kwargs
        )
    if segment_seconds is None:
        raise ValueError("training datasets need segment_seconds")
    cls = PreloadedAudioDataset if preload else AudioDataset
    return cls(
        source, sample_rate, channels, segment_seconds, seed=seed, loudness_db=loudness_db, **kwargs
    )
