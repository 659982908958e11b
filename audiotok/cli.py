"""The ``audiotok`` command line: each command parses, calls one library function, prints.

Errors that a user can fix (missing or corrupt files, bad token files, mismatched models) are
raised as :class:`audiotok.errors.UserError` by the library and printed here as one line with
a non-zero exit code, never as a traceback; so are everyday OS errors (disk full, permission
denied, a folder in the way). Warnings are one line too (``warning: <file>: <problem>``).
Ctrl-C exits with 130, at any moment.

Over 400 lines on purpose: the six commands' options and help texts are the bulk; the work
is in the library (batch files: :mod:`audiotok.batch`). The token-level commands
(``tokenize``, ``generate``, ``eval-prior``) live in :mod:`audiotok.cli_tokens`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from audiotok import __version__
from audiotok.batch import BatchListener, BatchResult, FileResult, error_line
from audiotok.cli_tokens import register as register_token_commands
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
    except (UserError, OSError) as exc:  # an OS error in our words: "disk full", ...
        typer.echo(f"error: {error_line(exc)}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


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


class _Bars(BatchListener):
    """Progress bars on stderr (when it is a terminal) and a line per failed file."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._files: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def started(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ).__enter__()
        self._files = self._bar.add_task("files", total=total)

    def file_started(self, source: Path) -> Callable[[int, int], None]:
        bar = self._bar
        self._task = task = bar.add_task(source.name, total=None)
        return lambda done, total: bar.update(task, completed=done, total=total)

    def file_finished(self, result: FileResult) -> None:
        if not result.ok and _interrupted:  # Ctrl-C, disguised by the code it interrupted
            raise KeyboardInterrupt
        if self._task is not None:
            self._bar.remove_task(self._task)
            self._bar.advance(self._files)
            self._task = None
        if result.error is not None:
            typer.echo(f"error: {result.error}", err=True)
        elif result.kept is not None:
            typer.echo(
                f"{result.source}: kept {result.kept.name} (not written by audiotok), "
                f"wrote {result.output}"
            )


def _run_batch(call: Callable[[BatchListener], BatchResult]) -> BatchResult:
    """Run a batch with progress bars and one-line warnings; a bad batch exits 1."""
    with _Bars() as bars, warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return run_or_exit(lambda: call(bars))


@app.command()
def encode(
    inputs: list[str] = typer.Argument(
        ..., help="Audio (or, with an image model, image) files, folders (recursive) or globs."
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out-dir",
        "-o",
        help="Write tokens into this folder (mirroring input folders), or to this .npy/.npz "
        "file for one input; default: beside each input.",
    ),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="A bundled model ('default' audio, 'fmnist' images) or an exported model folder.",
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
    lm: str | None = typer.Option(
        None,
        "--lm",
        help="Arithmetic-code the tokens under a prior (an export folder, or 'default' for "
        "the model's bundled prior): <stem>.atlm at about the prior's cross-entropy.",
    ),
    lm_context: int | None = typer.Option(
        None, "--lm-context", help="Frames of context for --lm (default: the prior's)."
    ),
) -> None:
    """Encode audio files to token files <stem>.npy (codes (K, T') + metadata).

    With an image model (--model fmnist), image files (png/jpg/webp/bmp, any case) become
    codes (K, H', W') with their original size in the metadata."""
    from audiotok.batch import encode_files

    result = _run_batch(
        lambda listener: encode_files(
            inputs,
            model,
            out=out_dir,
            num_codebooks=num_codebooks,
            bitrate=bitrate,
            token_format=fmt,
            force=force,
            listener=listener,
            lm=lm,
            lm_context=lm_context,
        )
    )
    if result.modality == "image":
        typer.echo(
            f"encoded {len(result.done)} image(s), {len(result.failed)} failed: "
            f"{result.tokens} tokens ({result.num_codebooks} codebook(s))"
        )
    else:
        typer.echo(
            f"encoded {len(result.done)} file(s), {len(result.failed)} failed: "
            f"{result.seconds:.2f} s of audio, {result.tokens} tokens ({result.num_codebooks} "
            f"codebooks x {result.frame_rate:g} Hz, {result.bitrate:g} kbps)"
        )
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def decode(
    tokens: list[str] = typer.Argument(
        ..., help="Token files (.npy/.npz, .atlm with --lm), folders or globs."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output audio/image file (one input) or folder; default: beside each input.",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="A bundled model name or an exported model folder; default: the bundled model "
        "that made the tokens, else 'default'.",
    ),
    original_rate: bool = typer.Option(
        True,
        "--original-rate/--model-rate",
        help="Write the source file's rate, length and channel count (images: size and "
        "channels) from the token file, or the model's.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite the output file (never the source recording)."
    ),
    lm: str | None = typer.Option(
        None, "--lm", help="The prior that wrote .atlm inputs (folder, or 'default')."
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

    Image tokens decode to <stem>.png at the original size (<stem>.decoded.png beside the
    source picture).
    """
    from audiotok.batch import decode_files

    result = _run_batch(
        lambda listener: decode_files(
            tokens,
            model,
            out=out,
            original_rate=original_rate,
            force=force,
            listener=listener,
            lm=lm,
        )
    )
    what = "" if result.modality == "image" else f": {result.seconds:.2f} s of audio"
    typer.echo(f"decoded {len(result.done)} file(s), {len(result.failed)} failed{what}")
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def info(
    model: str = typer.Argument(
        "default", help="A bundled model ('default', 'fmnist') or an exported model folder."
    ),
) -> None:
    """Show a model's modality, rates or code grid, codebooks and LM vocabulary size (for a
    prior: its kind, codes, context, grid, classes and conditioning)."""
    from audiotok import hub
    from audiotok.model_info import info_rows, prior_rows

    def _rows() -> list[tuple[str, str]]:
        directory = hub.resolve_model(model)
        meta = hub.read_pretrained_info(directory)
        if getattr(hub.MODEL_FAMILIES[meta.family], "modality", None) == "prior":
            return prior_rows(hub.load_prior(directory), model, meta.model_id, meta.family)
        return info_rows(hub.load(model), model)

    rows = run_or_exit(_rows)
    width = max(17, *(len(name) + 2 for name, _ in rows))
    for name, value in rows:
        typer.echo(f"{name + ':':{width}}{value}")


# ---- commands: eval (eval helper) ---------------------------------------------------------


@app.command("eval")
def eval_command(
    inputs: list[str] = typer.Argument(
        ...,
        help="Audio files, folders (recursive) or JSONL manifests (with a 'kind' field); for "
        "an image model: image folders or files, or datasets (IDX *-ubyte[.gz], CIFAR, .npy).",
    ),
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="A bundled model ('default', 'fmnist') or an exported model folder.",
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
    max_images: int | None = typer.Option(
        None, "--max-images", help="Images: evaluate at most this many (default all)."
    ),
) -> None:
    """Evaluate a tokenizer against Opus: SI-SDR, mel/STFT distance, STOI, PESQ, ViSQOL.

    For an image model: PSNR, SSIM, code usage over the whole set, bits per image and a PNG
    grid of originals above reconstructions."""
    from rich.console import Console
    from rich.table import Table

    from audiotok import hub
    from audiotok.eval.render import COLUMNS, fmt
    from audiotok.eval.report import evaluate

    tok = run_or_exit(lambda: hub.load(model))
    if tok.modality == "image":
        if bitrate:
            run_or_exit(lambda: _raise("--bitrate is for audio models"))
        _eval_images(tok, inputs, out_dir, force, max_images)
        return
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


def _raise(message: str) -> None:
    raise UserError(message)


def _eval_images(
    tok: Any, inputs: list[str], out_dir: Path, force: bool, limit: int | None
) -> None:
    """``audiotok eval`` with an image model: run :func:`evaluate_images`, print the summary."""
    from audiotok.eval.image_report import evaluate_images

    report = run_or_exit(
        lambda: evaluate_images(
            tok,
            inputs,
            out_dir=out_dir,
            limit=limit,
            overwrite=force,
            progress=lambda path: typer.echo(f"evaluating {path}", err=True),
        )
    )
    s = report.summary
    typer.echo(
        f"{s['images']} image(s): PSNR {s['psnr_db']:.2f} dB, SSIM {s['ssim']:.4f}, "
        f"code usage {100 * s['code_usage']:.1f} %, {s['bits_per_image_raw']:.0f} bits per "
        f"image ({s['bits_per_image_entropy']:.0f} at the unigram entropy bound)"
    )
    for f in report.failed:
        typer.echo(f"error: {f['path']}: {f['error']}", err=True)
    typer.echo(f"report: {report.markdown_path} (and report.json, grid.png)")
    if report.failed:
        typer.echo(f"evaluated {s['images']} image(s), {len(report.failed)} failed", err=True)
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
    """Train a codec or a prior from a recipe; under torchrun it trains with DDP."""

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
    dtype: str = typer.Option(
        "float32",
        "--dtype",
        help="Store the weights as float32 (as trained), float16 or bfloat16 (half the size; the "
        "export is the rounded model, with its own model id).",
    ),
    discriminator: bool = typer.Option(
        False,
        "--discriminator",
        help="Also write the discriminators (discriminator.safetensors, as trained), so that "
        "init_from this folder goes on with them.",
    ),
) -> None:
    """Export a training checkpoint as a model folder that load_pretrained reads."""

    def _run() -> Path:
        import torch

        from audiotok.errors import UserError
        from audiotok.training.export import export_checkpoint

        dtypes = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
        if dtype not in dtypes:
            raise UserError(f"--dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
        return export_checkpoint(
            checkpoint, out_dir, force=force, dtype=dtypes[dtype], discriminator=discriminator
        )

    out = run_or_exit(_run)
    typer.echo(str(out))
    from audiotok.hub import read_pretrained_info

    info = read_pretrained_info(out)
    if info.codes_id:  # a decoder fine-tune: say whose token files it reads
        typer.echo(f"model {info.model_id} makes the codes of {info.codes_id}: token files "
                   f"and priors of {info.codes_id} stay valid with it")  # fmt: skip


register_token_commands(app, run_or_exit)


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
