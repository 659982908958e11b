"""Codec speed and memory: audiotok's tokenizer against the EnCodec 24 kHz architecture.

Measures, in one run on the same machine:

* encode and decode speed (seconds of audio per wall-clock second) on 10 s of audio at batch
  1 and 8, at the same bitrate (6 kbps), for audiotok (through ``AudioTokenizer``, chunking
  included) and EnCodec 24 kHz (``encodec`` package, random init: no download; the speed does
  not depend on the weights), with the ratios;
* peak resident memory (``VmHWM``, else ``ru_maxrss``) of a fresh process that encodes a 1-hour WAV file with
  ``encode_file`` and of one that decodes its tokens with ``decode_to_file``.

The model is ``--model DIR``, else the bundled default, else the ``model`` section of
``recipes/default_24k.yaml`` at random init. ``pip install -c constraints.txt encodec``
first; on a CPU-only torch it may pull a torchaudio that does not load, which encodec only
needs for file I/O, so this script stands in an empty module for it.

Usage::

    python bench/codec_speed.py [--model DIR] [--seconds 10] [--repeats 3] [--hours 1]
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_tokenizer(model: str | None, recipe: Path):  # noqa: ANN201 - AudioTokenizer
    """The tokenizer to measure and a line saying where it came from."""
    from audiotok import hub
    from audiotok.tokenizer import AudioTokenizer

    if model is not None:
        return hub.load(model), f"model folder {model}"
    if (hub.DEFAULT_MODEL_DIR / hub.CONFIG_NAME).is_file():
        return hub.load("default"), "bundled default model"
    import yaml

    spec = yaml.safe_load(recipe.read_text())["model"]
    cls = hub.MODEL_FAMILIES[spec["family"]]
    torch.manual_seed(0)
    net = cls(cls.config_class.from_dict(spec.get("config", {})))
    return AudioTokenizer(net), f"{recipe.name} config at random init (no default model yet)"


def load_encodec():  # noqa: ANN201 - encodec.EncodecModel
    """EnCodec 24 kHz at random init, 6 kbps."""
    try:
        importlib.import_module("torchaudio")
    except Exception:  # missing, or a build that does not match torch
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    from encodec import EncodecModel

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(6.0)
    return model.eval()


def best_speeds(fns: list[Callable[[], object]], audio_seconds: float, repeats: int) -> list[float]:
    """Audio seconds per wall second of each function: best of ``repeats`` after a warm-up.

    The functions take turns, so that load from other processes hits them alike, and the
    fastest call counts (the least disturbed one).
    """
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return [audio_seconds / b for b in best]


def compare_speed(tok, encodec, seconds: float, repeats: int) -> None:  # noqa: ANN001
    """Print encode/decode speeds at batch 1 and 8 and audiotok / EnCodec ratios."""
    kbps = 6.0
    k = tok.num_codebooks_for(bitrate=kbps)
    print(f"bitrate: audiotok {tok.bitrates[k - 1]:g} kbps ({k} codebooks), EnCodec 6 kbps")
    print(f"{'':24}{'audiotok':>12}{'EnCodec':>12}{'ratio':>9}   (audio s / wall s)")
    gen = torch.Generator().manual_seed(0)
    for batch in (1, 8):
        wav = torch.randn(batch, 1, int(seconds * 24000), generator=gen) * 0.1
        codes = tok.encode(wav, 24000, bitrate=kbps)
        with torch.inference_mode():
            frames = encodec.encode(wav)

        def enc_ours(wav: torch.Tensor = wav) -> object:
            return tok.encode(wav, 24000, bitrate=kbps)

        def enc_theirs(wav: torch.Tensor = wav) -> object:
            with torch.inference_mode():
                return encodec.encode(wav)

        def dec_ours(codes: torch.Tensor = codes) -> object:
            return tok.decode(codes)

        def dec_theirs(frames: list = frames) -> object:
            with torch.inference_mode():
                return encodec.decode(frames)

        for what, pair in (("encode", (enc_ours, enc_theirs)), ("decode", (dec_ours, dec_theirs))):
            a, b = best_speeds(list(pair), batch * seconds, repeats)
            print(f"{what} batch {batch:<13}{a:>12.1f}{b:>12.1f}{a / b:>8.2f}x")


_CHILD = """
import json, resource, sys, numpy as np
from audiotok import hub
from audiotok.codes import read_codes, write_codes
tok = hub.load(sys.argv[2])
def peak_mb():
    # VmHWM belongs to this process image; ru_maxrss also keeps the parent's peak from fork
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak_mb()
if sys.argv[1] == "encode":
    codes, meta = tok.encode_file(sys.argv[3], bitrate=6.0)
    write_codes(sys.argv[4], codes, meta, force=True)
else:
    codes, meta = read_codes(sys.argv[3], tok)
    tok.decode_to_file(codes, sys.argv[4], length=meta.length, force=True)
print(json.dumps({"loaded_mb": base, "peak_mb": peak_mb()}))
"""


def measure_memory(tok, model_dir: str | None, hours: float) -> None:  # noqa: ANN001
    """Peak RSS of fresh processes encoding / decoding a long file through the file helpers."""
    from audiotok import hub

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if model_dir is None:
            model_dir = str(hub.save_pretrained(tok.model, tmp_path / "model"))
        wav_path = tmp_path / "long.wav"
        total = int(hours * 3600 * tok.sample_rate)
        rng = np.random.default_rng(0)
        with sf.SoundFile(wav_path, "w", tok.sample_rate, tok.channels, "PCM_16") as f:
            for start in range(0, total, 1 << 20):
                n = min(1 << 20, total - start)
                f.write((rng.standard_normal((n, tok.channels)) * 0.1).astype(np.float32))
        print(f"{hours:g} h file: {wav_path.stat().st_size / 2**20:.0f} MiB of 16-bit WAV")
        steps = [
            ("encode", wav_path, tmp_path / "long.npy"),
            ("decode", tmp_path / "long.npy", tmp_path / "back.wav"),
        ]
        for what, src, dest in steps:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, what, model_dir, str(src), str(dest)],
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.perf_counter() - start
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{what}: peak RSS {r['peak_mb']:.0f} MiB (model loaded: {r['loaded_mb']:.0f} MiB), "
                f"{hours * 3600 / wall:.1f}x real time"
            )
        assert sf.info(tmp_path / "back.wav").frames == total


def main() -> None:
    """Parse arguments and run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="exported model folder (default: bundled)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "default_24k.yaml")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hours", type=float, default=1.0, help="long-file length (0: skip)")
    args = parser.parse_args()

    tok, source = load_tokenizer(args.model, args.recipe)
    print(f"audiotok: {source}; {tok.num_parameters / 1e6:.2f} M parameters, {tok.sample_rate} Hz")
    if args.hours > 0:  # first, while this process is still small
        measure_memory(tok, args.model, args.hours)
    encodec = load_encodec()
    print(f"EnCodec 24 kHz: {sum(p.numel() for p in encodec.parameters()) / 1e6:.2f} M parameters")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    torch.set_grad_enabled(False)
    compare_speed(tok, encodec, args.seconds, args.repeats)


if __name__ == "__main__":
    main()
