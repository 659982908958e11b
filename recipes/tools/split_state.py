"""Split a training checkpoint's weights into small safetensors shards, and join them back.

A lent machine returns files of at most 16 MiB; a codec's generator in fp32 is larger. The
optimiser state is left out (it is twice the weights): what comes back starts a *fresh*
run with ``init_from`` (generator and discriminator as trained, new optimisers).

Usage::

    python recipes/tools/split_state.py split RUN_OR_CHECKPOINT OUT [--max-mb 15]
    python recipes/tools/split_state.py join OUT checkpoint.pt

``split`` writes ``weights-NN.safetensors`` (keys prefixed ``model.`` / ``discriminator.``)
and ``meta.json`` (step, recipe, the shard names and a SHA-256 of each). ``join`` checks the
hashes and writes a ``torch.save`` checkpoint with ``model``, ``discriminator``, ``config`` and
``step``, which ``audiotok train --set init_from=checkpoint.pt`` reads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from audiotok.training import checkpoint as ckpt


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split(source: str, out: str, max_mb: float) -> list[Path]:
    """Write ``source``'s weights to ``out`` in shards of at most ``max_mb`` MiB."""
    path = Path(source)
    found = ckpt.latest_checkpoint(path) if path.is_dir() else path
    if found is None:
        raise SystemExit(f"no checkpoint in {path}")
    state = ckpt.load_checkpoint(found)
    tensors = {f"model.{k}": v for k, v in state["model"].items()}
    for k, v in (state.get("discriminator") or {}).items():
        tensors[f"discriminator.{k}"] = v
    limit = max_mb * 2**20 - 2**16  # room for the header
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        t = tensor.detach().contiguous().cpu()
        n = t.numel() * t.element_size()
        if n > limit:
            raise SystemExit(f"{key} alone is {n / 2**20:.1f} MiB, over --max-mb")
        if size + n > limit and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][key] = t
        size += n
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for i, shard in enumerate(shards):
        name = dest / f"weights-{i:02d}.safetensors"
        save_file(shard, str(name))
        names.append(name)
    meta = {
        "step": state["step"],
        "source": found.name,
        "config": state["config"],
        "shards": {p.name: _sha256(p) for p in names},
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"step {state['step']}: {len(tensors)} tensors in {len(names)} shard(s) -> {dest}")
    return names


def join(folder: str, out: str) -> Path:
    """Rebuild a checkpoint (weights, recipe, step) from :func:`split`'s folder."""
    src = Path(folder)
    meta = json.loads((src / "meta.json").read_text())
    model: dict[str, torch.Tensor] = {}
    disc: dict[str, torch.Tensor] = {}
    for name, digest in meta["shards"].items():
        if _sha256(src / name) != digest:
            raise SystemExit(f"{src / name}: SHA-256 differs from meta.json (truncated copy?)")
        for key, value in load_file(str(src / name)).items():
            part, _, rest = key.partition(".")
            (model if part == "model" else disc)[rest] = value
    state = {
        "format": "audiotok-training-checkpoint",
        "version": 1,
        "step": meta["step"],
        "model": model,
        "discriminator": disc or None,
        "config": meta["config"],
    }
    path = ckpt.save_checkpoint(state, out)
    print(f"step {meta['step']}: {len(model)} + {len(disc)} tensors -> {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("source")
    s.add_argument("out")
    s.add_argument("--max-mb", type=float, default=15.0)
    j = sub.add_parser("join")
    j.add_argument("folder")
    j.add_argument("out")
    args = parser.parse_args(argv)
    if args.cmd == "split":
        split(args.source, args.out, args.max_mb)
    else:
        join(args.folder, args.out)


if __name__ == "__main__":
    sys.exit(main())
