"""The ``audiotok`` command line: each command parses, calls one library function, prints.

Errors that a user can fix (missing or corrupt files, bad token files, mismatched models) are
raised as :class:`audiotok.errors.UserError` by the library and printed here as one line with
a non-zero exit code, never as a traceback; so are everyday OS errors (disk full, permission
denied, a folder in the way). Warnings are one line too (``warning: <file>: <problem>``).
Ctrl-C exits with 130, at any moment.
"""

from __future__ import annotations

import glob
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from audiotok import __version__
from audiotok.atomic import is_temp
from audiotok.errors import UserError

T = TypeVar("T")

#: Set by the console script's SIGINT handler: a library may turn the KeyboardInterrupt into
#: another exception (one raised inside an import it triggers, say), and this tells them apart.
_interrupted = False


def _on_sigint(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


app = typer.Typer(
    name="audiotok",
    help="Turn audio into discrete tokens and back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"audiotok {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Turn audio into discrete tokens and back."""


def run_or_exit(fn: Callable[[], T]) -> T:
    """Call ``fn``; turn a :class:`UserError` into ``error: <message>`` and exit code 1.

    Every command wraps its one library call in this, so that bad input never shows a
    traceback. Ctrl-C exits with 130.
    """
    try:
        return fn()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: {_os_error_line(exc)}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def _os_error_line(exc: OSError, default: Path | str | None = None) -> str:
    from audiotok.atomic import describe_os_error

    where = exc.filename if exc.filename is not None else default
    return f"{where}: {describe_os_error(exc)}" if where is not None else describe_os_error(exc)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings as one line, ``warning: <message>``, without source locations."""
    typer.echo(f"warning: {str(message).strip().splitlines()[0]}", err=True)


# ---- commands: encode / decode / info (tokenizer helper) ---------------------------------

_TOKEN_SUFFIXES = frozenset({".npy", ".npz"})


def _expand(items: list[str], suffixes: frozenset[str]) -> tuple[list[tuple[Path, Path]], int]:
    """``(file, path relative to an output folder)`` for each input, and a failure count.

    Files are taken as given (a missing one is kept, to be reported when read), folders are
    searched recursively for ``suffixes``, globs (``*``, ``?``, ``[``, ``**``) are expanded
    (folders among the matches searched too). A folder or glob without any matching file is
    reported here as ``error: <input>: ...`` and counted.
    """
    out: list[tuple[Path, Path]] = []
    failed = 0

    def wanted(f: Path) -> bool:  # never a temporary file left by a killed run
        return f.suffix.lower() in suffixes and not is_temp(f) and f.is_file()

    def search(folder: Path) -> list[tuple[Path, Path]]:
        found = sorted(f for f in folder.rglob("*") if wanted(f))
        return [(f, f.relative_to(folder)) for f in found]

    for item in items:
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
            failed += 1
            kinds = ", ".join(sorted(suffixes))
            typer.echo(f"error: {item}: no matching files ({kinds})", err=True)
        out += found
    return out, failed


def _raise(exc: Exception) -> None:
    raise exc


def _check_out(out: Path, count: int, single: frozenset[str], other: frozenset[str]) -> bool:
    """Whether ``-o out`` names one output file (else a folder), or a ``UserError``.

    ``out`` names a file when its extension is in ``single`` and there is one input; with
    many inputs that is an error, as is an extension in ``other`` (the wrong kind of file)
    and an existing ``out`` that is not a folder: ``-o`` never makes a folder named like a
    file, nor writes into ``/dev/null``.
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


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _each_file(
    jobs: list[tuple[Path, Path]], work: Callable[[Path, Path, Callable[[int, int], None]], None]
) -> int:
    """Run ``work(src, dest, progress)`` per job with a progress bar; report each failure in
    one line (``error: <file>: <problem>``) and go on. Returns the number of failures."""
    failed = 0
    seen: dict[Path, Path] = {}
    with _progress() as bar:
        files = bar.add_task("files", total=len(jobs))
        for src, dest in jobs:
            task = bar.add_task(src.name, total=None)
            try:
                if dest.resolve() in seen:
                    raise UserError(
                        f"{src}: output {dest} is also written for {seen[dest.resolve()]}"
                    )
                seen[dest.resolve()] = src
                with warnings.catch_warnings():
                    warnings.showwarning = _show_warning
                    work(
                        src,
                        dest,
                        lambda done, total, t=task: bar.update(t, completed=done, total=total),
                    )
            except Exception as exc:
                if _interrupted:  # Ctrl-C, disguised by the code it interrupted
                    raise KeyboardInterrupt from None
                failed += 1
                typer.echo(f"error: {_error_line(exc, src)}", err=True)
            finally:
                bar.remove_task(task)
                bar.advance(files)
    return failed


def _error_line(exc: Exception, src: Path) -> str:
    """One line for a failed file: ours, an OS error in our words, or the exception's name."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):  # disk full, permission denied, ...
        return _os_error_line(exc, src)
    if isinstance(exc, MemoryError):
        return f"{src}: out of memory"
    # a bug or an odd file: still one line, and the batch goes on
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{src}: {type(exc).__name__}: {msg}"


@app.command()
def encode(
    inputs: list[str] = typer.Argument(..., help="Audio files, folders (recursive) or globs."),
    out_dir: Path | None = typer.Option(
        None,
        "--out-dir",
        "-o",
        help="Write tokens into this folder (mirroring input folders), or to this .npy/.npz "
        "file for one input; default: beside each input.",
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="'default' or an exported model folder."
    ),
    bitrate: float | None = typer.Option(
        None,
        "--bitrate",
        "-b",
        help="kbps, one of the model's bitrates ('audiotok info'), e.g. 1.5, 3, 6.",
    ),
    num_codebooks: int | None = typer.Option(
        None, "--num-codebooks", "-k", help="Codebooks to keep."
    ),
    fmt: str = typer.Option("npy", "--format", "-f", help="npy (plain + trailer) or npz."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing token files."),
) -> None:
    """Encode audio files to token files <stem>.npy (codes (K, T') + metadata)."""
    from audiotok import hub
    from audiotok.atomic import check_destination
    from audiotok.audio_io import AUDIO_EXTENSIONS
    from audiotok.codes import write_codes

    if fmt not in ("npy", "npz"):
        run_or_exit(lambda: _raise(UserError(f"--format must be npy or npz, got {fmt!r}")))
    tok = run_or_exit(lambda: hub.load(model))
    k = run_or_exit(lambda: tok.num_codebooks_for(num_codebooks=num_codebooks, bitrate=bitrate))
    found, failed = _expand(inputs, AUDIO_EXTENSIONS)
    single = out_dir is not None and run_or_exit(
        lambda: _check_out(out_dir, len(found), _TOKEN_SUFFIXES, AUDIO_EXTENSIONS)
    )
    if single and fmt == "npz" and out_dir.suffix.lower() != ".npz":  # type: ignore[union-attr]
        run_or_exit(lambda: _raise(UserError(f"{out_dir}: --format npz needs a .npz file name")))
    jobs = [
        (src, out_dir if single else ((out_dir / rel) if out_dir else src).with_suffix("." + fmt))
        for src, rel in found
    ]
    totals = {"files": 0, "seconds": 0.0, "tokens": 0}

    def work(src: Path, dest: Path, progress: Callable[[int, int], None]) -> None:
        if src.is_file():  # an existing output or a folder in the way: before the slow part
            check_destination(dest, force)
        codes, meta = tok.encode_file(src, num_codebooks=k, progress=progress)
        write_codes(dest, codes, meta, force=force)
        totals["files"] += 1
        totals["seconds"] += meta.length / meta.sample_rate
        totals["tokens"] += codes.numel()

    failed += run_or_exit(lambda: _each_file(jobs, work))
    rate = tok.bitrates[k - 1] if len(tok.bitrates) > 1 else tok.bitrate
    typer.echo(
        f"encoded {totals['files']} file(s), {failed} failed: {totals['seconds']:.2f} s of audio, "
        f"{totals['tokens']} tokens ({k} codebooks x {tok.frame_rate:g} Hz, {rate:g} kbps)"
    )
    raise typer.Exit(1 if failed else 0)


@app.command()
def decode(
    tokens: list[str] = typer.Argument(..., help="Token files (.npy/.npz), folders or globs."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output audio file (one input) or folder; default: beside each input.",
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="'default' or an exported model folder."
    ),
    original_rate: bool = typer.Option(
        True,
        "--original-rate/--model-rate",
        help="Write the source file's rate, length and channel count (from the token file), "
        "or the model's rate and channels.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite the output file (never the source recording)."
    ),
) -> None:
    """Decode token files to audio at the source's sample rate, exact length and channels.

    Token files that audiotok wrote carry the source's rate, length and channel count; plain
    (K, T') arrays decode at the model's rate and channels. A mono model's output is copied
    into each channel of a stereo source (the channels are identical).

    Output names: -o FILE.wav for one input is written as given. Otherwise the output is
    <stem>.wav beside the tokens (or in the -o folder), unless a <stem>.wav that audiotok did
    not write is there (usually the recording the tokens came from): then the audio goes to
    <stem>.decoded.wav. --force replaces only that output file, never the recording.
    """
    from audiotok import hub
    from audiotok.audio_io import AUDIO_EXTENSIONS, check_output_path
    from audiotok.codes import read_codes

    tok = run_or_exit(lambda: hub.load(model))
    found, failed = _expand(tokens, _TOKEN_SUFFIXES)
    single = out is not None and run_or_exit(
        lambda: _check_out(out, len(found), AUDIO_EXTENSIONS, _TOKEN_SUFFIXES)
    )
    jobs = [
        (src, out if single else ((out / rel) if out else src).with_suffix(".wav"))
        for src, rel in found
    ]
    kept: dict[Path, Path] = {}  # song.decoded.wav -> the song.wav (a recording) it avoided
    if not single:
        moved = [(src, _decode_dest(dest)) for src, dest in jobs]
        kept = {new: old for (_, old), (_, new) in zip(jobs, moved, strict=True) if new != old}
        jobs = moved
    totals = {"files": 0, "seconds": 0.0}

    def work(src: Path, dest: Path, progress: Callable[[int, int], None]) -> None:
        codes, meta = read_codes(src, tok)
        check_output_path(dest, force)
        length, rate, channels = (meta.length, None, None) if meta else (None, None, None)
        if meta and original_rate:
            length, rate = meta.original_length, meta.original_sample_rate
            channels = meta.original_channels
        tok.decode_to_file(
            codes,
            dest,
            length=length,
            sample_rate=rate,
            channels=channels,
            force=force,
            progress=progress,
        )
        if dest in kept:
            typer.echo(f"{src}: kept {kept[dest].name} (not written by audiotok), wrote {dest}")
        totals["files"] += 1
        totals["seconds"] += (length or codes.shape[-1] * tok.hop_length) / (
            rate or tok.sample_rate
        )

    failed += run_or_exit(lambda: _each_file(jobs, work))
    typer.echo(
        f"decoded {totals['files']} file(s), {failed} failed: {totals['seconds']:.2f} s of audio"
    )
    raise typer.Exit(1 if failed else 0)


def _decode_dest(dest: Path) -> Path:
    """``dest`` (``<stem>.wav``), or ``<stem>.decoded.wav`` when ``dest`` holds something
    audiotok did not write (a recording, a folder): decode never names a user's file as its
    output, so ``--force`` cannot replace it."""
    from audiotok.audio_io import written_by_audiotok

    if not dest.exists() and not dest.is_symlink():
        return dest
    if dest.is_file() and written_by_audiotok(dest):
        return dest
    return dest.with_name(f"{dest.stem}.decoded{dest.suffix}")


@app.command()
def info(
    model: str = typer.Argument("default", help="'default' or an exported model folder."),
) -> None:
    """Show a model's rates, codebooks, bitrates and LM vocabulary size."""
    from audiotok import hub

    tok = run_or_exit(lambda: hub.load(model))
    rf = tok.receptive_field
    rows = [
        ("model", str(model)),
        ("model id", tok.model_id),
        ("family", tok.family),
        ("sample rate", f"{tok.sample_rate} Hz"),
        ("channels", str(tok.channels)),
        ("frame rate", f"{tok.frame_rate:g} Hz"),
        ("hop length", f"{tok.hop_length} samples"),
        ("codebooks", str(tok.num_codebooks)),
        ("codebook size", str(tok.codebook_size)),
        ("bitrates", ", ".join(f"{b:g}" for b in tok.bitrates) + " kbps"),
        (
            "LM vocabulary",
            f"{tok.vocab_size} ({tok.num_codebooks} x {tok.codebook_size} per codebook)",
        ),
        ("parameters", f"{tok.num_parameters:,}"),
        ("receptive field", f"{rf} samples ({1000 * rf / tok.sample_rate:.1f} ms) per side"),
    ]
    for name, value in rows:
        typer.echo(f"{name + ':':17}{value}")


# ---- commands: eval (eval helper) ---------------------------------------------------------


@app.command("eval")
def eval_command(
    inputs: list[str] = typer.Argument(
        ..., help="Audio files, folders (recursive) or JSONL manifests (with a 'kind' field)."
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="'default' or an exported model folder."
    ),
    bitrate: list[float] = typer.Option(
        [],
        "--bitrate",
        "-b",
        help="kbps to evaluate, on the model's ladder (repeatable); default: all offered.",
    ),
    out_dir: Path = typer.Option(Path("eval_report"), "--out-dir", "-o", help="Report folder."),
    max_seconds: float = typer.Option(
        10.0, "--max-seconds", help="Evaluate each file's first S seconds; 0: whole files."
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="speech, music or audio for every file (default: per file)."
    ),
    no_opus: bool = typer.Option(False, "--no-opus", help="Skip the Opus comparison."),
    no_visqol: bool = typer.Option(False, "--no-visqol", help="Skip ViSQOL (the slow metric)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty report folder."),
) -> None:
    """Evaluate a tokenizer against Opus: SI-SDR, mel/STFT distance, STOI, PESQ, ViSQOL."""
    from rich.console import Console
    from rich.table import Table

    from audiotok import hub
    from audiotok.eval.render import COLUMNS, fmt
    from audiotok.eval.report import evaluate

    tok = run_or_exit(lambda: hub.load(model))
    for b in bitrate:  # the same ladder rule as encode: 6000 or 5 is an error, not "the most"
        run_or_exit(lambda b=b: tok.num_codebooks_for(bitrate=b))
    report = run_or_exit(
        lambda: evaluate(
            tok,
            inputs,
            out_dir=out_dir,
            bitrates=bitrate or None,
            kind=kind,  # type: ignore[arg-type]
            max_seconds=max_seconds or None,
            opus=not no_opus,
            visqol=not no_visqol,
            overwrite=force,
            progress=lambda path: typer.echo(f"evaluating {path}", err=True),
        )
    )
    cols = [c for c in COLUMNS if any(a[c[0]] is not None for a in report.aggregates)]
    table = Table(title=f"audiotok eval: {len(report.files)} file(s), means per kind and bitrate")
    for name in ("kind", "system", "kbps", *(c[1] for c in cols), "files"):
        table.add_column(name, justify="left" if name in ("kind", "system") else "right")
    for a in report.aggregates:
        cells = [fmt(a[key], spec) for key, _, spec in cols]
        table.add_row(a["kind"], a["system"], f"{a['bitrate_kbps']:.4g}", *cells, str(a["files"]))
    console = Console(width=max(100, Console().width))
    console.print(table)
    for f in report.failed:
        typer.echo(f"error: {f['path']}: {f['error']}", err=True)
    console.print(f"report: {report.markdown_path} (and report.json, {len(report.figures)} PNG)")
    if report.failed:  # like encode and decode: a batch with failures is not a success
        typer.echo(f"evaluated {len(report.files)} file(s), {len(report.failed)} failed", err=True)
        raise typer.Exit(1)


# ---- commands: train / export (training helper) -------------------------------------------


@app.command("train")
def train_command(
    recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/README.md)."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a recipe value: --set optim.lr=3e-4 (repeatable)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run from its run_dir's latest checkpoint."
    ),
    resume_from: Path | None = typer.Option(
        None, "--resume-from", help="Continue the run from this checkpoint file."
    ),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Run folder (default: recipe's)."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Set optim.max_steps (also the cosine schedule's length)."
    ),
) -> None:
    """Train a codec from a recipe; under torchrun it trains with DDP."""

    def _run() -> Any:
        from audiotok.training.trainer import train_recipe

        return train_recipe(
            recipe,
            overrides,
            resume=resume,
            resume_from=resume_from,
            run_dir=run_dir,
            max_steps=max_steps,
        )

    result = run_or_exit(_run)
    if result.checkpoint is not None:
        typer.echo(f"step {result.step}: {result.checkpoint}")


@app.command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (or a run folder)."),
    out_dir: Path = typer.Argument(..., help="Folder for config.json + model.safetensors."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing export's config.json and model.safetensors (other files in "
        "the folder are kept).",
    ),
) -> None:
    """Export a training checkpoint as a model folder that load_pretrained reads."""

    def _run() -> Path:
        from audiotok.training.export import export_checkpoint

        return export_checkpoint(checkpoint, out_dir, force=force)

    typer.echo(str(run_or_exit(_run)))


def _exit_interrupted() -> None:
    """Exit 130 now. Not ``sys.exit``: CPython (3.11) remembers an interrupt that hit code
    run by ``exec`` (dataclasses, typing, ...) even once handled, and would end the process
    by SIGINT (status -2) instead of 130. Everything worth cleaning up (temporary files) was
    removed by the ``except``/``finally`` blocks the interrupt went through."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(130)


def main() -> None:
    """Entry point of the ``audiotok`` console script (see also :mod:`audiotok.__main__`).

    Ctrl-C anywhere exits 130 without a traceback (typer turns an interrupt inside a command
    into exit code 130; this catches the rest), and warnings are one line each.
    """
    import signal

    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        _exit_interrupted()
    except SystemExit as exc:
        if _interrupted and exc.code == 130:
            _exit_interrupted()
        raise
    except Exception:
        if not _interrupted:
            raise
        typer.echo("interrupted", err=True)
        _exit_interrupted()
