"""Checking a data source's files before training, and reporting the ones dropped.

Every dataset runs its files through :func:`probe_entries` (a header read, in threads) and
reports what it dropped with :func:`report_dropped`: one ``RuntimeWarning`` per file, naming
the file and the problem, then one with the counts. The ``audiotok`` CLI shows each warning
as one line (``warning: runs/a.wav: dropped (not a readable audio file (Format not
recognised.))``). When no file is left, :func:`no_usable_audio` is the one-line error message.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from audiotok.audio_io import AudioFileError, audio_info
from audiotok.data.manifest import ManifestEntry
from audiotok.errors import UserError

__all__ = [
    "describe_source",
    "problem_of",
    "probe_entries",
    "report_dropped",
    "warn_dropped",
    "no_usable_audio",
]

#: Header reads in flight at once (libsndfile releases the GIL; the work is mostly I/O).
PROBE_THREADS = 8


def describe_source(source: Any) -> str:
    """A short name for a data source in messages: its path, or ``a list of N entries``."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    try:
        return f"a list of {len(source)} entries"
    except TypeError:
        return type(source).__name__


def problem_of(path: str, err: BaseException) -> str:
    """The problem in an error about ``path``, without the path: ``not a readable audio
    file (Format not recognised.)`` (:class:`~audiotok.audio_io.AudioFileError` keeps the
    two apart; other messages have the path cut out)."""
    if isinstance(err, AudioFileError):
        return err.problem
    text = str(err).replace(f" {path}", "")
    return text.strip().rstrip(":.").strip() or type(err).__name__


def warn_dropped(path: str, problem: str) -> None:
    """One warning line for a file left out of a dataset."""
    warnings.warn(f"{path}: dropped ({problem})", RuntimeWarning, stacklevel=3)


def _probe(entry: ManifestEntry) -> ManifestEntry | UserError:
    try:
        sr, ch, frames = audio_info(entry.path)
    except UserError as err:
        return err
    if entry.duration > 0:  # keep what the manifest says (MP3 frame counts are estimates)
        return entry
    return ManifestEntry(entry.path, sr, frames / sr if sr else 0.0, ch, entry.source, entry.extra)


def probe_entries(
    entries: Sequence[ManifestEntry], threads: int = PROBE_THREADS
) -> tuple[list[ManifestEntry], list[tuple[str, str]]]:
    """Read every file's header; fill unknown durations, and set aside unreadable files.

    Args:
        entries: the source's files.
        threads: header reads in flight.

    Returns:
        ``(kept, dropped)``: the readable entries in input order (durations filled from the
        header where the manifest had none), and ``(path, problem)`` for each other one.
    """
    if len(entries) > 1 and threads > 1:
        with ThreadPoolExecutor(min(threads, len(entries))) as pool:
            probed = list(pool.map(_probe, entries))
    else:
        probed = [_probe(e) for e in entries]
    kept = [p for p in probed if isinstance(p, ManifestEntry)]
    dropped = [
        (e.path, problem_of(e.path, p))
        for e, p in zip(entries, probed, strict=True)
        if isinstance(p, UserError)
    ]
    return kept, dropped


def report_dropped(name: str, dropped: Sequence[tuple[str, str]], total: int) -> None:
    """Warn once per dropped file, then once with the counts (silent when none was dropped).

    Args:
        name: the source, as :func:`describe_source` gives it.
        dropped: ``(path, problem)`` pairs.
        total: files in the source before dropping.
    """
    if not dropped:
        return
    for path, problem in dropped:
        warn_dropped(path, problem)
    kept = total - len(dropped)
    warnings.warn(
        f"{name}: {kept} of {total} files kept, {len(dropped)} dropped",
        RuntimeWarning,
        stacklevel=2,
    )


def no_usable_audio(name: str, dropped: Sequence[tuple[str, str]]) -> str:
    """The error message for a source with no usable file left."""
    if not dropped:
        return f"no usable audio in {name}"
    path, problem = dropped[0]
    return (
        f"no usable audio in {name}: all {len(dropped)} files were dropped "
        f"(first: {path}: {problem})"
    )
