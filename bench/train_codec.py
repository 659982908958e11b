"""Training-step throughput: audiotok's SoundStream speech recipe against EnCodec's generator.

Measures, on the same machine in one run, one training step (forward, losses, backward,
AdamW step) at the same batch, segment length, sample rate and bitrate:

* ``audiotok G``: the generator of ``recipes/soundstream_speech_16k.yaml`` (SEANet with
  dilations 1/3/9, causal, RVQ 8 x 1024 at 50 Hz = 4 kbps) with the recipe's losses (mel,
  STFT, commitment) through :class:`audiotok.training.tasks.CodecTask`;
* ``audiotok G+D``: the same plus the recipe's discriminators (MS-STFT + MPD): adversarial
  and feature-matching losses and the discriminator's own step;
* ``EnCodec G``: EnCodec's generator architecture (``encodec`` package, random init, no
  download: ``EncodecModel._get_model`` with its SEANet encoder/decoder, 2-layer LSTM and
  EMA RVQ) built for the same 16 kHz audio and 4 kbps (8 codebooks at 50 Hz), with the same
  losses;
* ``EnCodec G+D``: that generator with the same discriminators and adversarial step.

Throughput is seconds of audio trained per wall-clock second: the median over the timed
steps, after warm-up steps (which also run the k-means codebook initialisation), with the
variants' steps interleaved in one process so that changing machine load hits all alike.
Peak memory is measured for each variant in a fresh subprocess (growth of the peak resident
set over two steps; on CUDA the peak allocated memory).

``pip install -c constraints.txt encodec`` first (the ``bench`` extra); without it the
EnCodec rows are skipped with a note. On a CPU-only torch, encodec's torchaudio dependency
may not load; encodec needs it only for file I/O, so an empty module stands in for it.

Usage::

    python bench/train_codec.py [--recipe recipes/soundstream_speech_16k.yaml]
        [--batch 4] [--seconds 1.0] [--steps 4] [--warmup 2] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("audiotok G", "audiotok G+D", "EnCodec G", "EnCodec G+D")


def _encodec_available() -> str | None:
    """None when encodec imports, else the reason it does not."""
    try:
        importlib.import_module("torchaudio")
    except Exception:  # missing, or a build that does not match torch
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        importlib.import_module("encodec")
    except Exception as exc:  # noqa: BLE001 - report any failure as a note
        return f"{type(exc).__name__}: {exc}"
    return None


class EncodecGenerator(torch.nn.Module):
    """EnCodec's encoder, RVQ and decoder behind audiotok's ``forward -> CodecOutput``."""

    def __init__(self, sample_rate: int, bitrate_kbps: float) -> None:
        super().__init__()
        from encodec import EncodecModel

        net = EncodecModel._get_model([bitrate_kbps], sample_rate=sample_rate, causal=True)
        self.encoder, self.quantizer, self.decoder = net.encoder, net.quantizer, net.decoder
        self.sample_rate = sample_rate
        self.bandwidth = bitrate_kbps
        self.hop_length = int(self.encoder.hop_length)
        self.codebook_size = int(self.quantizer.bins)
        self.num_codebooks = int(self.quantizer.n_q)
        self.frame_rate = sample_rate / self.hop_length

    def forward(self, wav: torch.Tensor):  # noqa: ANN201 - CodecOutput
        from audiotok.audio.base import CodecOutput

        q = self.quantizer(self.encoder(wav), self.sample_rate, self.bandwidth)
        audio = self.decoder(q.quantized)[..., : wav.shape[-1]]
        codes = q.codes.transpose(0, 1)  # (K, B, T') -> (B, K, T')
        return CodecOutput(audio, codes, q.penalty, {})


class Variant:
    """One model + optimiser(s) + task, ready to take training steps."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        from audiotok.training.config import load_config
        from audiotok.training.optim import WarmupSchedule, build_optimizer
        from audiotok.training.tasks import CodecTask, Discriminators
        from audiotok.training.trainer import build_model

        torch.manual_seed(0)
        self.name, self.args = name, args
        self.device = torch.device(args.device)
        cfg = load_config(args.recipe)
        ours = build_model(cfg.model.family, cfg.model.config)
        if name.startswith("EnCodec"):
            model = EncodecGenerator(ours.sample_rate, ours.bitrate)
        else:
            model = ours
        self.model = model.to(self.device).train()
        d = cfg.discriminator
        self.disc = None
        if name.endswith("G+D"):
            self.disc = Discriminators.build(d.msstft, d.mpd, 1).to(self.device)
        schedule = WarmupSchedule(0, 1000, "constant")
        kw = {"lr": cfg.optim.lr, "betas": cfg.optim.betas, "weight_decay": 0.0}
        self.opt_g, _ = build_optimizer(self.model.parameters(), schedule=schedule, **kw)
        self.opt_d = None
        if self.disc is not None:
            self.opt_d, _ = build_optimizer(self.disc.parameters(), schedule=schedule, **kw)
        self.task = CodecTask(self.model, self.disc, cfg.loss, start_step=0)
        self.length = int(args.seconds * self.model.sample_rate)
        self.gen = torch.Generator().manual_seed(1)
        self.step = 0

    def train_step(self) -> float:
        """One full training step on a random batch; returns its wall time in seconds."""
        args = self.args
        batch = 0.1 * torch.randn(args.batch, 1, self.length, generator=self.gen)
        batch = batch.to(self.device)
        start = time.perf_counter()
        self.opt_g.zero_grad(set_to_none=True)
        out = self.task.generator_step(batch, self.step)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt_g.step()
        if self.opt_d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            self.task.discriminator_step(batch, out, self.step)
            self.opt_d.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.step += 1
        return time.perf_counter() - start

    def describe(self) -> dict:
        m = self.model
        return {
            "params_m": sum(p.numel() for p in m.parameters()) / 1e6,
            "disc_params_m": (
                sum(p.numel() for p in self.disc.parameters()) / 1e6 if self.disc else 0.0
            ),
            "bitrate_kbps": m.frame_rate * m.num_codebooks * 10 / 1000,
        }


def peak_memory(name: str, args: argparse.Namespace) -> float:
    """MB of peak memory of two training steps of one variant, in this (fresh) process."""
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    import librosa.filters  # noqa: F401  (imports first: count the model, not the libraries)
    import torch._dynamo as _dynamo  # noqa: F401

    import audiotok.training.trainer  # noqa: F401

    base = _peak_rss_kib()
    variant = Variant(name, args)
    for _ in range(2):
        variant.train_step()
    if args.device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return (_peak_rss_kib() - base) / 1024


def _peak_rss_kib() -> int:
    """This process's peak resident set in KiB: ``VmHWM`` (reset by exec, unlike
    ``ru_maxrss``, which a child inherits from a large parent), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes/soundstream_speech_16k.yaml")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0, help="segment length")
    parser.add_argument("--steps", type=int, default=4, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only:  # a fresh process measuring one variant's peak memory
        if args.only.startswith("EnCodec"):
            _encodec_available()
        print(json.dumps({"peak_mb": peak_memory(args.only, args)}))
        return
    missing = _encodec_available()
    names = [v for v in VARIANTS if not (missing and v.startswith("EnCodec"))]
    print(
        f"recipe {args.recipe.name}, batch {args.batch} x {args.seconds:g} s, device "
        f"{args.device}, {args.threads} threads, {args.steps} timed steps after {args.warmup}"
    )
    # throughput: all variants in this process, steps interleaved so that a machine whose
    # load changes during the run slows every variant alike
    variants = [Variant(n, args) for n in names]
    for v in variants:
        for _ in range(args.warmup):
            v.train_step()
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.steps):
        for v in variants:
            times[v.name].append(v.train_step())
    results = {}
    for v in variants:
        step_s = statistics.median(times[v.name])
        results[v.name] = {
            **v.describe(),
            "variant": v.name,
            "step_s": step_s,
            "audio_s_per_s": args.batch * args.seconds / step_s,
            "peak_mb": float("nan"),
        }
    del variants
    for name in names:
        cmd = [sys.executable, __file__, "--only", name]
        cmd += [f"--{k}={v}" for k, v in vars(args).items() if k != "only"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode == 0:
            results[name]["peak_mb"] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
        else:
            print(f"{name}: memory run failed: {out.stderr.strip().splitlines()[-1:]}")
    print(
        f"{'variant':<14}{'G params':>10}{'D params':>10}{'kbps':>6}{'s/step':>9}"
        f"{'audio s/s':>11}{'peak MB':>9}"
    )
    for r in results.values():
        print(
            f"{r['variant']:<14}{r['params_m']:>9.2f}M{r['disc_params_m']:>9.2f}M"
            f"{r['bitrate_kbps']:>6.1f}{r['step_s']:>9.3f}{r['audio_s_per_s']:>11.2f}"
            f"{r['peak_mb']:>9.0f}"
        )
    if missing:
        print(
            f"note: encodec is not importable ({missing}); pip install -c constraints.txt encodec"
        )
    for kind in ("G", "G+D"):
        a, e = results.get(f"audiotok {kind}"), results.get(f"EnCodec {kind}")
        if a and e:
            print(
                f"ratio audiotok/EnCodec {kind}: throughput "
                f"x{a['audio_s_per_s'] / e['audio_s_per_s']:.2f}, "
                f"peak memory x{a['peak_mb'] / max(e['peak_mb'], 1e-9):.2f}"
            )


if __name__ == "__main__":
    main()
