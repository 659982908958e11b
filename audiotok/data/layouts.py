"""Readers for standard speech-corpus folder layouts, returning manifest entries with speakers.

Supported layouts (users bring the data; nothing is downloaded):

* LibriSpeech / LibriTTS(-R): ``<root>/<split>/<speaker>/<chapter>/*.flac|*.wav``; ``root``
  may also be a single split folder (``<root>/<speaker>/<chapter>/...``).
* VCTK 0.92: ``<root>/wav48_silence_trimmed/<speaker>/<speaker>_<utt>_mic1.flac`` (``mic2``
  duplicates each utterance with a second microphone; kept out unless asked), or VCTK 0.80:
  ``<root>/wav48/<speaker>/*.wav``.
* A plain folder: every audio file below it; the speaker/source id is the first sub-folder
  (empty for files directly in ``root``).

All readers sort their output, so the entry order (and therefore any seeded sampling) is
reproducible across machines.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from audiotok.audio_io import AUDIO_EXTENSIONS
from audiotok.data.manifest import ManifestEntry, list_audio_files, probe
from audiotok.errors import UserError


def _make(path: Path, probe_files: bool, **extra: str) -> ManifestEntry:
    if probe_files:
        return probe(path, source=str(path), **extra)
    return ManifestEntry(str(path), source=str(path), extra=dict(extra))


def _is_split_dir(d: Path) -> bool:
    """A LibriSpeech split holds <speaker>/<chapter>/ folders with numeric names."""
    for spk in d.iterdir():
        if spk.is_dir() and spk.name.isdigit():
            return any(c.is_dir() and c.name.isdigit() for c in spk.iterdir())
    return False


def librispeech_entries(
    root: str | os.PathLike,
    splits: Sequence[str] | None = None,
    probe_files: bool = True,
    dataset: str = "librispeech",
) -> list[ManifestEntry]:
    """Entries of a LibriSpeech or LibriTTS tree.

    Args:
        root: corpus root (holding split folders such as ``train-clean-100``) or one split.
        splits: split folder names to keep; None keeps every split found.
        probe_files: read headers for rate/duration/channels (fast; no decoding).
        dataset: value of the ``dataset`` field (e.g. ``"libritts"``).

    Returns:
        Entries with extra fields ``speaker`` (``"<dataset>_<id>"``), ``chapter``, ``split``,
        ``dataset``, ``kind="speech"``.
    """
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"LibriSpeech root not found: {base}")
    if _is_split_dir(base):
        split_dirs = [base]
    else:
        split_dirs = sorted(d for d in base.iterdir() if d.is_dir() and _is_split_dir(d))
    if splits is not None:
        missing = set(splits) - {d.name for d in split_dirs}
        if missing:
            raise UserError(f"splits {sorted(missing)} not found under {base}")
        split_dirs = [d for d in split_dirs if d.name in set(splits)]
    out = []
    for split in split_dirs:
        for path in list_audio_files(split):
            rel = path.relative_to(split).parts
            if len(rel) != 3:
                continue
            out.append(
                _make(
                    path,
                    probe_files,
                    speaker=f"{dataset}_{rel[0]}",
                    chapter=rel[1],
                    split=split.name,
                    dataset=dataset,
                    kind="speech",
                )
            )
    if not out:
        raise UserError(f"no <split>/<speaker>/<chapter>/audio files found under {base}")
    return out


def vctk_entries(
    root: str | os.PathLike, mics: Sequence[str] | None = ("mic1",), probe_files: bool = True
) -> list[ManifestEntry]:
    """Entries of a VCTK tree (0.92 ``wav48_silence_trimmed`` or 0.80 ``wav48``).

    Args:
        root: corpus root.
        mics: for 0.92, which microphone suffixes to keep (``("mic1",)`` avoids duplicate
            utterances); None keeps all. Ignored for 0.80 files, which have no suffix.
        probe_files: read headers for rate/duration/channels.

    Returns:
        Entries with extra fields ``speaker`` (``"vctk_p225"``), ``dataset="vctk"``,
        ``kind="speech"``.
    """
    base = Path(root)
    audio_root = next(
        (base / d for d in ("wav48_silence_trimmed", "wav48") if (base / d).is_dir()), None
    )
    if audio_root is None:
        raise UserError(f"no wav48_silence_trimmed/ or wav48/ folder in VCTK root {base}")
    out = []
    for path in list_audio_files(audio_root):
        rel = path.relative_to(audio_root).parts
        if len(rel) != 2:
            continue
        stem_parts = path.stem.split("_")
        if mics is not None and len(stem_parts) >= 3 and stem_parts[-1] not in mics:
            continue
        out.append(
            _make(path, probe_files, speaker=f"vctk_{rel[0]}", dataset="vctk", kind="speech")
        )
    if not out:
        raise UserError(f"no <speaker>/audio files found under {audio_root}")
    return out


def folder_entries(root: str | os.PathLike, probe_files: bool = True) -> list[ManifestEntry]:
    """Entries of a plain folder; ``speaker`` is the first sub-folder name ("" at top level)."""
    base = Path(root)
    out = []
    for path in list_audio_files(base):
        rel = path.relative_to(base).parts
        out.append(_make(path, probe_files, speaker=rel[0] if len(rel) > 1 else ""))
    if not out:
        exts = ", ".join(sorted(AUDIO_EXTENSIONS))
        raise UserError(f"no audio files ({exts}) found under {base}")
    return out


def detect_layout(root: str | os.PathLike) -> str:
    """Guess a folder's layout: ``"vctk"``, ``"librispeech"`` or ``"folder"``."""
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"audio folder not found: {base}")
    if (base / "wav48_silence_trimmed").is_dir() or (base / "wav48").is_dir():
        return "vctk"
    if _is_split_dir(base) or any(d.is_dir() and _is_split_dir(d) for d in base.iterdir()):
        return "librispeech"
    return "folder"


def layout_entries(
    root: str | os.PathLike, layout: str = "auto", probe_files: bool = True
) -> list[ManifestEntry]:
    """Entries of ``root`` read with the named (or detected) layout.

    Args:
        root: corpus folder.
        layout: ``"auto"``, ``"librispeech"``, ``"libritts"``, ``"vctk"`` or ``"folder"``.
        probe_files: read headers for rate/duration/channels.
    """
    if layout == "auto":
        layout = detect_layout(root)
    if layout in ("librispeech", "libritts"):
        return librispeech_entries(root, probe_files=probe_files, dataset=layout)
    if layout == "vctk":
        return vctk_entries(root, probe_files=probe_files)
    if layout == "folder":
        return folder_entries(root, probe_files=probe_files)
    raise ValueError(f"unknown layout {layout!r} (auto, librispeech, libritts, vctk, folder)")
