"""Audio manifests (JSONL), source listing (folder / file list / manifest) and file-level splits.

A manifest is a JSON-lines file, one object per audio file::

    {"path": "speech/a.flac", "sample_rate": 24000, "duration": 3.2, "channels": 1,
     "source": "queen:020001P2.SB", "kind": "speech", "speaker": "queen_P"}

``path`` may be relative: it is resolved against the manifest's folder. ``sample_rate``,
``duration`` and ``channels`` describe the file as stored; ``source`` names the original
recording it came from (several files cut from one track share it, and validation splits
keep them together). Any other keys (``kind``, ``speaker``, ``orig_sample_rate``, ...) are
kept in :attr:`ManifestEntry.extra`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotok.atomic import open_atomic
from audiotok.audio_io import AUDIO_EXTENSIONS, audio_info
from audiotok.data.corpus import missing_corpus_hint
from audiotok.errors import UserError

_CORE = ("path", "sample_rate", "duration", "channels", "source")


@dataclass(frozen=True)
class ManifestEntry:
    """One audio file of a corpus.

    Attributes:
        path: absolute (or caller-relative) path of the audio file.
        sample_rate: the stored file's rate in Hz (0 if unknown).
        duration: seconds (0.0 if unknown).
        channels: channel count (0 if unknown).
        source: id of the original recording (defaults to the path); splits group by it.
        extra: any other manifest keys (``kind``, ``speaker``, ``orig_sample_rate``, ...).
    """

    path: str
    sample_rate: int = 0
    duration: float = 0.0
    channels: int = 0
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def group(self) -> str:
        """The key that splits keep together: ``source`` if set, else ``path``."""
        return self.source or self.path

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """JSON-ready dict; ``path`` is made relative to ``relative_to`` when it lies below it."""
        path = self.path
        if relative_to is not None:
            try:
                path = str(Path(self.path).resolve().relative_to(Path(relative_to).resolve()))
            except ValueError:
                pass
        d = {
            "path": path,
            "sample_rate": self.sample_rate,
            "duration": round(self.duration, 4),
            "channels": self.channels,
            "source": self.source or path,
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: str | os.PathLike | None = None) -> ManifestEntry:
        """Build from a manifest row; a relative ``path`` is joined to ``root``."""
        if "path" not in d:
            raise UserError(f"manifest row has no 'path': {json.dumps(d)[:120]}")
        path = Path(str(d["path"]))
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        return cls(
            path=str(path),
            sample_rate=int(d.get("sample_rate") or 0),
            duration=float(d.get("duration") or 0.0),
            channels=int(d.get("channels") or 0),
            source=str(d.get("source") or ""),
            extra={k: v for k, v in d.items() if k not in _CORE},
        )


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a JSONL manifest; relative paths resolve against the manifest's folder."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"manifest not found: {p}")
    entries = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"bad JSON on line {i} of manifest {p}: {e.msg}") from None
        entries.append(ManifestEntry.from_dict(row, root=p.parent))
    return entries


def write_manifest(
    entries: Iterable[ManifestEntry],
    path: str | os.PathLike,
    relative: bool = True,
    *,
    force: bool = True,
) -> Path:
    """Write entries as JSONL; paths below the manifest's folder become relative.

    The file is written atomically (:func:`audiotok.atomic.open_atomic`, the umask's mode).
    ``force=False`` refuses an existing file (exclusively, also under races); the default
    replaces it, so that a corpus build can be run again.

    Raises:
        UserError: ``path`` exists and ``force`` is False, or it cannot be written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    root = p.parent if relative else None
    text = "".join(json.dumps(e.to_dict(relative_to=root)) + "\n" for e in entries)
    with open_atomic(p, force=force, text=True) as f:
        f.write(text)
    return p


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """All files below ``folder`` (recursively) with an audio extension, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"audio folder not found: {root}")
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
    )


def probe(path: str | os.PathLike, source: str = "", **extra: Any) -> ManifestEntry:
    """Make a manifest entry from a file's header (fast: no decoding)."""
    sr, ch, frames = audio_info(path)
    return ManifestEntry(str(path), sr, frames / sr if sr else 0.0, ch, source, dict(extra))


def build_manifest(
    paths: Iterable[str | os.PathLike],
    out: str | os.PathLike | None = None,
    skip_unreadable: bool = True,
) -> list[ManifestEntry]:
    """Probe files with ``soundfile.info`` and optionally write a JSONL manifest.

    Args:
        paths: audio files.
        out: manifest to write, or None.
        skip_unreadable: drop files whose header cannot be read (else raise UserError).

    Returns:
        The entries, in the order of ``paths``.
    """
    entries = []
    for path in paths:
        try:
            entries.append(probe(path))
        except UserError:
            if not skip_unreadable:
                raise
    if out is not None:
        write_manifest(entries, out)
    return entries


def load_entries(source: str | os.PathLike | Sequence[Any]) -> list[ManifestEntry]:
    """Resolve a data source into manifest entries.

    Args:
        source: one of: a folder (scanned recursively for audio files; headers are not
            probed, so durations are 0 until read); a ``.jsonl`` manifest; a text file with
            one audio path per line (relative paths resolve against its folder; ``#``
            comments allowed); a single audio file; or a list of entries / dicts / paths.

    Returns:
        Manifest entries.
    """
    if isinstance(source, (list, tuple)):
        out = []
        for item in source:
            if isinstance(item, ManifestEntry):
                out.append(item)
            elif isinstance(item, dict):
                out.append(ManifestEntry.from_dict(item))
            else:
                out.append(ManifestEntry(str(item)))
        return out
    p = Path(source)
    if p.is_dir():
        return [ManifestEntry(str(f)) for f in list_audio_files(p)]
    if not p.is_file():
        hint = missing_corpus_hint(p)
        raise UserError(f"data source not found: {p}" + (f" ({hint})" if hint else ""))
    if p.suffix.lower() in {".jsonl", ".json"}:
        return read_manifest(p)
    if p.suffix.lower() in AUDIO_EXTENSIONS:
        return [ManifestEntry(str(p))]
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    return [
        ManifestEntry(str(f if (f := Path(ln)).is_absolute() else p.parent / f))
        for ln in lines
        if ln and not ln.startswith("#")
    ]


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_file(
    entries: Sequence[ManifestEntry],
    dev_fraction: float = 0.05,
    seed: int = 0,
    stratify: str | None = None,
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """Split into (train, dev) by source recording, never by crop.

    Each :attr:`ManifestEntry.group` (``source``, else ``path``) gets a deterministic number
    in [0, 1) from ``sha1(seed:group)``; groups below ``dev_fraction`` go to dev. The result
    does not depend on entry order or on other files, so adding files never moves old ones.
    If ``stratify`` names an ``extra`` key (e.g. ``"kind"``), every value of it with at least
    two groups gets at least ``max(1, round(dev_fraction * n_groups))`` dev groups (topped up
    with its lowest-hash train groups).

    Args:
        entries: manifest entries.
        dev_fraction: expected fraction of groups in dev, in [0, 1).
        seed: changes the assignment.
        stratify: optional extra key to guarantee dev coverage for.

    Returns:
        ``(train, dev)`` lists, each in input order.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    score = {e.group: _unit_hash(e.group, seed) for e in entries}
    dev_groups = {g for g, s in score.items() if s < dev_fraction}
    if stratify is not None and dev_fraction > 0:
        by_value: dict[Any, set[str]] = {}
        for e in entries:
            by_value.setdefault(e.extra.get(stratify), set()).add(e.group)
        for groups in by_value.values():
            want = max(1, round(dev_fraction * len(groups))) if len(groups) >= 2 else 0
            missing = max(0, want - len(groups & dev_groups))
            dev_groups.update(sorted(groups - dev_groups, key=score.__getitem__)[:missing])
    train = [e for e in entries if e.group not in dev_groups]
    dev = [e for e in entries if e.group in dev_groups]
    return train, dev
