"""The token-level commands of ``audiotok``: ``tokenize``, ``generate`` and ``eval-prior``.

Each works for both modalities: with an image tokenizer ``tokenize`` writes one shard row
per image (:func:`audiotok.bulk.tokenize_images`), and with an image prior ``generate``
writes a PNG grid of class-conditional samples (:mod:`audiotok.image_generation`).

Kept apart from :mod:`audiotok.cli` (which registers them on its app through
:func:`register`) so that neither file grows past a readable size. Like every command, each
parses, calls one library function (:mod:`audiotok.bulk`, :mod:`audiotok.generation`),
prints, and turns a :class:`~audiotok.errors.UserError` into one ``error:`` line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from audiotok.atomic import write_text_atomic
from audiotok.errors import UserError

__all__ = ["register", "load_any_prior"]


def load_any_prior(path: str | os.PathLike) -> Any:
    """A prior from an export folder (``audiotok export``) or a training checkpoint (``.pt``).

    Raises:
        UserError: not a prior, or unreadable.
    """
    from audiotok.prior import load_prior

    p = Path(path)
    if p.is_file() and p.suffix == ".pt":
        from audiotok.registry import build_model
        from audiotok.statedict import load_state_strict
        from audiotok.training.checkpoint import load_checkpoint

        state = load_checkpoint(p)
        model_cfg = state["config"].get("model", {})
        model = build_model(model_cfg.get("family", ""), model_cfg.get("config", {}))
        load_state_strict(model, state["model"], f"{p}: weights do not match its recipe")
        prior = model.eval()
    else:
        if not p.exists():
            raise UserError(f"{p}: no such prior (an export folder or a .pt checkpoint)")
        prior = load_prior(p)
    if getattr(prior, "modality", None) != "prior" or not hasattr(prior, "generate"):
        raise UserError(f"{p}: not a prior")
    return prior


def _is_image_prior(prior: Any) -> bool:
    return bool(getattr(prior.config, "latent_shape", ()))


def register(app: typer.Typer, run_or_exit: Callable[[Callable[[], Any]], Any]) -> None:
    """Add the three commands to ``app`` (``run_or_exit`` prints errors in one line)."""

    @app.command("tokenize")
    def tokenize_command(
        inputs: list[Path] = typer.Argument(
            ...,
            help="Audio or image files, folders, file lists or JSONL manifests (images also "
            "IDX, CIFAR batches, .npy/.npz).",
        ),
        out: Path = typer.Option(..., "-o", "--out", help="Token folder (resumed if it exists)."),
        model: str = typer.Option("default", "--model", "-m", help="Tokenizer (name or folder)."),
        num_codebooks: int | None = typer.Option(None, "--num-codebooks", help="Keep k codebooks."),
        dev_fraction: float = typer.Option(0.02, help="Share of source recordings in dev."),
        shard_frames: int = typer.Option(1 << 22, help="Code frames per shard."),
    ) -> None:
        """Encode a corpus into token shards for priors (resumable; torchrun splits files)."""

        def _run() -> Any:
            from audiotok.bulk import tokenize_corpus
            from audiotok.hub import load

            rank = int(os.environ.get("RANK", "0"))
            world = int(os.environ.get("WORLD_SIZE", "1"))
            barrier = None
            if world > 1:
                import torch.distributed as dist

                if not dist.is_initialized():
                    dist.init_process_group("gloo")
                barrier = dist.barrier
            tok = load(model)
            if getattr(tok, "modality", "audio") == "image":
                return _tokenize_images(tok, inputs, out, dev_fraction, shard_frames)

            def on_file(path: str, problem: str | None) -> None:
                if problem is not None:
                    typer.echo(f"error: {path}: {problem}", err=True)

            res = tokenize_corpus(
                tok,
                [str(p) for p in inputs],
                out,
                num_codebooks=num_codebooks,
                rank=rank,
                world_size=world,
                dev_fraction=dev_fraction,
                shard_frames=shard_frames,
                barrier=barrier,
                on_file=on_file,
            )
            seconds = res.frames / tok.frame_rate
            typer.echo(
                f"rank {rank}: tokenized {res.encoded} file(s) ({seconds / 60:.1f} min of audio), "
                f"{res.skipped} already done, {len(res.failed)} failed -> {out}"
            )
            return res

        res = run_or_exit(_run)
        if res.failed:
            raise typer.Exit(1)

    @app.command("generate")
    def generate_command(
        prior: Path | None = typer.Option(
            None, "--prior", help="Prior export or checkpoint (default: the model's bundled one)."
        ),
        model: str = typer.Option("default", "--model", "-m", help="Tokenizer (name or folder)."),
        bottom_prior: Path | None = typer.Option(
            None,
            "--bottom-prior",
            help="VQ-VAE-2: the bottom prior, conditioned on the top codes (--prior: the top).",
        ),
        sampler: str | None = typer.Option(
            None, "--sampler", help="Image priors: ar or maskgit (default: the prior's own)."
        ),
        steps: int = typer.Option(8, "--steps", help="MaskGIT iterations."),
        prompt: Path | None = typer.Option(None, "--prompt", help="Audio to continue."),
        prompt_seconds: float = typer.Option(3.0, help="Seconds of the prompt to use."),
        seconds: float = typer.Option(10.0, help="Length of each result, prompt included."),
        num_samples: int | None = typer.Option(
            None, "-n", "--num-samples", help="How many results (default: 1 audio, 16 images)."
        ),
        temperature: float = typer.Option(1.0, help="Sampling temperature (0: greedy)."),
        top_k: int | None = typer.Option(None, help="Sample among the k likeliest codes."),
        top_p: float | None = typer.Option(None, help="Nucleus sampling threshold."),
        cfg: float = typer.Option(1.0, "--cfg", help="Classifier-free guidance scale."),
        class_label: int | None = typer.Option(None, "--class", help="Class to generate."),
        seed: int = typer.Option(0, help="Random seed."),
        out: Path = typer.Option(
            Path("generated"), "-o", "--out", help="Output folder (audio) or PNG grid (images)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace existing outputs."),
    ) -> None:
        """Generate with a prior: audio continuations (WAVs and tokens), or for an image prior
        a PNG grid of samples (``-n 16 --class 3 --cfg 2 --sampler maskgit -o grid.png``)."""

        def _run() -> list[Path]:
            from audiotok.audio_io import read_audio, write_audio
            from audiotok.codes import write_codes
            from audiotok.generation import generate_audio
            from audiotok.hub import load
            from audiotok.image_generation import bundled_prior_dir

            source = prior if prior is not None else bundled_prior_dir(model)
            if source is None:
                raise UserError(
                    f"no bundled prior for model {model!r}: pass --prior (train one with "
                    "recipes/prior_tiny.yaml, then 'audiotok export RUN_DIR DIR')"
                )
            net = load_any_prior(source)
            if bottom_prior is not None and not _is_image_prior(net):
                raise UserError("--bottom-prior is for two-level image models (VQ-VAE-2)")
            if _is_image_prior(net):
                bottom = load_any_prior(bottom_prior) if bottom_prior is not None else None
                return _generate_images(
                    load(model), net, 16 if num_samples is None else num_samples, class_label, cfg, sampler, steps,
                    temperature, top_k, seed, out, force, bottom,
                )  # fmt: skip
            n = 1 if num_samples is None else num_samples
            if n < 1 or seconds <= 0:
                raise UserError("-n must be >= 1 and --seconds > 0")
            tok = load(model)
            wav, sr = read_audio(prompt) if prompt is not None else (None, None)
            result = generate_audio(
                tok,
                net,
                prompt=wav,
                prompt_sample_rate=sr,
                prompt_seconds=prompt_seconds,
                seconds=seconds,
                num_samples=n,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                cfg_scale=cfg,
                class_label=class_label,
                seed=seed,
            )
            out.mkdir(parents=True, exist_ok=True)
            written = []
            for i in range(n):
                wav_path, tok_path = out / f"sample_{i}.wav", out / f"sample_{i}.npy"
                for p in (wav_path, tok_path):
                    if p.exists() and not force:
                        raise UserError(f"{p}: output already exists (use --force to overwrite)")
                audio = result.audio[i].numpy()
                write_audio(wav_path, audio, result.sample_rate)
                meta = tok.codes_meta(result.codes.shape[1], audio.shape[-1])
                write_codes(tok_path, result.codes[i], meta, force=True)
                written.append(wav_path)
            typer.echo(
                f"generated {n} x {seconds:g} s ({result.prompt_frames} prompt frames) -> {out}"
            )
            return written

        run_or_exit(_run)

    @app.command("eval-prior")
    def eval_prior_command(
        prior: Path = typer.Argument(..., help="Prior export or checkpoint."),
        tokens: Path = typer.Argument(..., help="Token folder to score (audiotok tokenize)."),
        fit: Path | None = typer.Option(None, "--fit", help="Token folder the baselines fit on."),
        split: str = typer.Option("all", help="Files of the folder to score: dev, train or all."),
        max_files: int = typer.Option(500, help="Score at most this many files."),
        out: Path | None = typer.Option(None, "-o", "--out", help="Write report.md/json here."),
    ) -> None:
        """Bits per codebook and per frame, kbps under the prior vs unigram and bigram."""

        def _run() -> dict[str, Any]:
            import torch

            from audiotok.data.shards import TokenShards
            from audiotok.generation import score_prior

            if split not in ("dev", "train", "all"):
                raise UserError(f"--split must be dev, train or all, got {split!r}")
            net = load_any_prior(prior)
            shards = TokenShards(tokens, split=None if split == "all" else split)
            if not len(shards):
                raise UserError(f"{tokens}: no {split} files")
            if shards.info.modality == "image":
                return _eval_image_prior(net, shards, fit, out)
            files = [torch.from_numpy(shards.codes(i).astype("int64")) for i in range(len(shards))]
            fit_files = None
            if fit is not None:
                fs = TokenShards(fit, model_id=shards.info.model_id)
                fit_files = [torch.from_numpy(fs.codes(i).astype("int64")) for i in range(len(fs))]
            report = score_prior(
                net, files[:max_files], fit=fit_files, frame_rate=shards.info.frame_rate
            )
            report["tokens"], report["tokenizer"] = str(tokens), shards.info.to_dict()
            text = render_prior_report(report)
            typer.echo(text)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                write_text_atomic(out / "report.md", text + "\n")
                write_text_atomic(out / "report.json", json.dumps(report, indent=1) + "\n")
            return report

        run_or_exit(_run)


def _tokenize_images(
    tok: Any, inputs: list[Path], out: Path, dev_fraction: float, shard_frames: int
) -> Any:
    """``audiotok tokenize`` with an image tokenizer (one row per image, labels kept)."""
    from audiotok.bulk import tokenize_images

    res = tokenize_images(
        tok, [str(p) for p in inputs], out, dev_fraction=dev_fraction, shard_frames=shard_frames
    )
    shape = res.meta["tokenizer"]["latent_shape"]
    grid = "x".join(map(str, shape)) if shape else "mixed"
    typer.echo(
        f"tokenized {res.encoded} image(s) ({grid} codes each), {res.skipped} already done -> {out}"
    )
    return res


def _generate_images(
    tok: Any,
    net: Any,
    num_samples: int,
    class_label: int | None,
    cfg: float,
    sampler: str | None,
    steps: int,
    temperature: float,
    top_k: int | None,
    seed: int,
    out: Path,
    force: bool,
    bottom: Any | None = None,
) -> list[Path]:
    """``audiotok generate`` with an image prior (and for VQ-VAE-2 its bottom prior): a PNG
    grid and one token file per sample."""
    from audiotok.image_generation import generate_images, write_generation

    result = generate_images(
        tok,
        net,
        num_samples,
        class_label=class_label,
        cfg_scale=cfg,
        sampler=sampler,
        steps=steps,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        bottom_prior=bottom,
    )
    grid = out if out.suffix.lower() == ".png" else out / "grid.png"
    written = write_generation(result, tok, grid, force=force)
    what = "unconditional" if class_label is None else f"class {class_label}, cfg {cfg:g}"
    typer.echo(
        f"generated {num_samples} image(s) ({what}; {result.sampler} sampler, "
        f"{result.seconds:.2f} s) -> {grid} (+ {len(written) - 1} token files)"
    )
    return written


def _eval_image_prior(net: Any, shards: Any, fit: Path | None, out: Path | None) -> dict:
    """``audiotok eval-prior`` on image token shards: bits per image vs unigram and uniform."""
    import numpy as np
    import torch

    from audiotok.data.shards import TokenShards
    from audiotok.image_generation import score_image_prior

    def stack(s: Any) -> torch.Tensor:
        return torch.from_numpy(np.stack([s.codes(i) for i in range(len(s))]).astype(np.int64))

    labels = torch.tensor([int(r.get("label", -1)) for r in shards.files])
    fit_codes = stack(TokenShards(fit, model_id=shards.info.model_id)) if fit else None
    report = score_image_prior(net, stack(shards), labels, fit=fit_codes)
    report["tokenizer"] = shards.info.to_dict()
    text = "\n".join(
        [
            "| model | bits per image |",
            "|---|---|",
            f"| prior (true class) | {report['bits_per_image']:.1f} |",
            f"| prior (null class) | {report['bits_per_image_null_class']:.1f} |",
            f"| unigram | {report['unigram_bits_per_image']:.1f} |",
            f"| uniform | {report['uniform_bits_per_image']:.1f} |",
            f"\n{report['images']} images",
        ]
    )
    typer.echo(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "report.md", text + "\n")
        write_text_atomic(out / "report.json", json.dumps(report, indent=1) + "\n")
    return report


def render_prior_report(report: dict[str, Any]) -> str:
    """A Markdown table of :func:`audiotok.generation.score_prior`'s report."""
    k = len(report["prior"]["bits_per_codebook"])
    head = "| model | " + " | ".join(f"cb {i}" for i in range(k)) + " | bits/frame | kbps |"
    rows = [head, "|---" * (k + 3) + "|"]
    for name in ("prior", "bigram", "unigram"):
        r = report[name]
        cells = " | ".join(f"{b:.2f}" for b in r["bits_per_codebook"])
        rows.append(f"| {name} | {cells} | {r['bits_per_frame']:.2f} | {r['kbps']:.3f} |")
    rows.append(
        f"\n{report['files']} files, {report['frames']} frames; raw {report['raw_kbps']:.2f} "
        f"kbps; under the prior {100 * report['reduction']:.1f} % less"
    )
    return "\n".join(rows)
