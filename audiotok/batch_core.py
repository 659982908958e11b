"""The plumbing every batch command shares: results, listener, input expansion, output plans.

:mod:`audiotok.batch` (audio) and :mod:`audiotok.image_batch` (images) build their
``encode_files`` / ``decode_files`` from these parts: :func:`expand_inputs` (folders searched
recursively, globs, a folder that matches nothing becomes a failure), :func:`output_is_file`
and :func:`plan_jobs` (outputs beside each input, in an ``-o`` folder mirroring the inputs'
folders, or the one ``-o`` file), :func:`decoded_name` (decode never names a user's file as
its output) and :func:`run_jobs` (each file's failure becomes one line in its
:class:`FileResult`, and the batch goes on).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audiotok.atomic import describe_os_error, is_temp
from audiotok.errors import UserError

__all__ = [
    "TOKEN_SUFFIXES",
    "FileResult",
    "BatchResult",
    "BatchListener",
    "error_line",
    "expand_inputs",
    "output_is_file",
    "decoded_name",
    "plan_jobs",
    "run_jobs",
]

#: extensions of token files
TOKEN_SUFFIXES: frozenset[str] = frozenset({".npy", ".npz"})

PathLike = str | os.PathLike
#: ``progress(done, total)`` of one file (samples when encoding, frames when decoding)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FileResult:
    """The outcome of one input.

    Attributes:
        source: the input file (or the folder or glob that matched nothing).
        output: the file written, or that would have been.
        error: ``None`` on success, else one line, ``<file>: <problem>``.
        seconds: seconds of audio encoded or decoded.
        tokens: codes written (encode): ``K * T'``.
        kept: decode only: the ``<stem>.wav`` (not written by audiotok) that made the output
            ``<stem>.decoded.wav``.
    """

    source: Path
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    tokens: int = 0
    kept: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether the file was written."""
        return self.error is None


@dataclass(frozen=True)
class BatchResult:
    """Every input's outcome, in order, and the totals.

    Attributes:
        files: one :class:`FileResult` per input file, and one per folder or glob that
            matched nothing.
        num_codebooks: encode: K written per file.
        frame_rate: encode: code frames per second.
        bitrate: encode: kbps of the codes written.
        modality: ``"audio"`` or ``"image"`` (then ``frame_rate`` and ``bitrate`` are
            ``None`` and ``seconds`` is 0).
    """

    files: tuple[FileResult, ...]
    num_codebooks: int | None = None
    frame_rate: float | None = None
    bitrate: float | None = None
    modality: str = "audio"

    @property
    def done(self) -> list[FileResult]:
        """The files written."""
        return [r for r in self.files if r.ok]

    @property
    def failed(self) -> list[FileResult]:
        """The failures (files, and folders or globs that matched nothing)."""
        return [r for r in self.files if not r.ok]

    @property
    def seconds(self) -> float:
        """Seconds of audio of the files written."""
        return sum(r.seconds for r in self.done)

    @property
    def tokens(self) -> int:
        """Codes written over all files."""
        return sum(r.tokens for r in self.done)


class BatchListener:
    """Follows a batch as it runs; every method does nothing unless overridden.

    The CLI overrides them to draw progress bars and print a line per failure. An exception
    raised by a method stops the batch (the CLI raises ``KeyboardInterrupt`` there when a
    failure was really Ctrl-C).
    """

    def started(self, total: int) -> None:
        """``total`` files are about to be processed (after the inputs were expanded)."""

    def file_started(self, source: Path) -> Progress | None:
        """``source`` is next; returns a callback for its progress, or ``None``."""
        return None

    def file_finished(self, result: FileResult) -> None:
        """An input is done (``result.ok``) or failed (``result.error``)."""


def error_line(exc: BaseException, where: PathLike | None = None) -> str:
    """One line for a failure: ours, an OS error in our words, or the exception's name.

    Args:
        exc: what was raised.
        where: the file it concerns, when the exception does not name one.
    """
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):  # disk full, permission denied, ...
        at = exc.filename if exc.filename is not None else where
        return f"{at}: {describe_os_error(exc)}" if at is not None else describe_os_error(exc)
    if isinstance(exc, MemoryError):
        return f"{where}: out of memory"
    # a bug or an odd file: still one line, and the batch goes on
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{where}: {type(exc).__name__}: {msg}"


def expand_inputs(
    items: Sequence[PathLike], suffixes: frozenset[str]
) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """``(file, path relative to an output folder)`` for each input file, and the failures.

    Files are taken as given (a missing one is kept, to be reported when read), folders are
    searched recursively for ``suffixes``, globs (``*``, ``?``, ``[``, ``**``) are expanded
    (folders among the matches searched too). A folder or glob without any matching file is
    a failure, ``<input>: no matching files (<suffixes>)``.
    """
    out: list[tuple[Path, Path]] = []
    failed: list[FileResult] = []

    def wanted(f: Path) -> bool:  # never a temporary file left by a killed run
        return f.suffix.lower() in suffixes and not is_temp(f) and f.is_file()

    def search(folder: Path) -> list[tuple[Path, Path]]:
        found = sorted(f for f in folder.rglob("*") if wanted(f))
        return [(f, f.relative_to(folder)) for f in found]

    for item in map(os.fspath, items):
        p = Path(item)
        if p.is_dir():
            found = search(p)
        elif not p.exists() and any(ch in item for ch in "*?["):
            found = []
            for m in sorted(Path(m) for m in glob.glob(item, recursive=True)):
                if m.is_dir():
                    found += [(f, Path(m.name) / rel) for f, rel in search(m)]
                elif wanted(m):
                    found.append((m, Path(m.name)))
        else:
            out.append((p, Path(p.name)))
            continue
        if not found:
            kinds = ", ".join(sorted(suffixes))
            failed.append(FileResult(p, error=f"{item}: no matching files ({kinds})"))
        out += found
    return out, failed


def output_is_file(out: Path, count: int, single: frozenset[str], other: frozenset[str]) -> bool:
    """Whether ``out`` names one output file (else a folder to write into).

    ``out`` names a file when its extension is in ``single`` and there is one input; with
    many inputs that is an error, as is an extension in ``other`` (the wrong kind of file)
    and an existing ``out`` that is not a folder: ``out`` never makes a folder named like a
    file, nor writes into ``/dev/null``.

    Raises:
        UserError: any of those.
    """
    if str(out) == "-":
        raise UserError("-o -: writing to standard output is not supported; give a file or folder")
    ext = out.suffix.lower()
    if ext in single:
        if count > 1:
            raise UserError(
                f"{out}: -o names one {ext} file but there are {count} inputs; "
                "give a folder for many inputs"
            )
        if out.exists() and not out.is_file():
            what = "a folder" if out.is_dir() else "not a regular file"
            raise UserError(f"{out}: output is {what}")
        return True
    if ext in other:
        kind = ", ".join(sorted(single))
        raise UserError(f"{out}: -o names a {ext} file; this command writes {kind} files")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder (-o takes a folder here)")
    return False


def plan_jobs(
    inputs: Sequence[PathLike] | PathLike,
    out: PathLike | None,
    suffixes: frozenset[str],
    outputs: frozenset[str],
    suffix: str,
    listener: BatchListener,
) -> tuple[list[tuple[Path, Path]], list[FileResult], bool]:
    """``(input, output)`` pairs (inputs with ``suffixes``, outputs ``<stem><suffix>``), the
    inputs that matched nothing (reported to ``listener`` at once), and whether ``out`` names
    the one output file (an extension in ``outputs``).

    Raises:
        UserError: ``out`` is of the wrong kind (see :func:`output_is_file`).
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    found, failed = expand_inputs(items, suffixes)
    for result in failed:
        listener.file_finished(result)
    dest = None if out is None else Path(out)
    single = dest is not None and output_is_file(dest, len(found), outputs, suffixes)
    jobs = [
        (src, dest if single else ((dest / rel) if dest else src).with_suffix(suffix))  # type: ignore[misc]
        for src, rel in found
    ]
    return jobs, failed, single


def run_jobs(
    jobs: list[tuple[Path, Path]],
    work: Callable[[Path, Path, Progress | None], FileResult],
    listener: BatchListener,
) -> list[FileResult]:
    """``work(source, dest, progress)`` per job; a failure becomes a :class:`FileResult` with
    its one-line error, and the batch goes on."""
    results: list[FileResult] = []
    seen: dict[Path, Path] = {}
    listener.started(len(jobs))
    for src, dest in jobs:
        progress = listener.file_started(src)
        try:
            if dest.resolve() in seen:
                raise UserError(f"{src}: output {dest} is also written for {seen[dest.resolve()]}")
            seen[dest.resolve()] = src
            result = work(src, dest, progress)
        except Exception as exc:
            result = FileResult(src, dest, error=error_line(exc, src))
        results.append(result)
        listener.file_finished(result)
    return results


def decoded_name(dest: Path, written_by_us: Callable[[Path], bool]) -> Path:
    """``dest`` (``<stem>.<ext>``), or ``<stem>.decoded.<ext>`` when ``dest`` holds something
    audiotok did not write (``written_by_us`` says which files it did; a folder is never
    ours): decode never names a user's file as its output, so ``force`` cannot replace it."""
    if not dest.exists() and not dest.is_symlink():
        return dest
    if dest.is_file() and written_by_us(dest):
        return dest
    return dest.with_name(f"{dest.stem}.decoded{dest.suffix}")
