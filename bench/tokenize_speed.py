"""Bulk tokenization throughput (audio seconds per second) with 1 and with N ranks.

Usage::

    python bench/tokenize_speed.py CORPUS/dev.jsonl [--model default] [--files 40] [--ranks 2]

Runs the real command twice on the same files, into fresh folders: ``audiotok tokenize`` in
one process, then ``torchrun --nproc_per_node N -m audiotok tokenize`` (gloo, one thread per
rank), and prints a table of wall time, audio seconds per second and the speed-up. Start-up
(Python, torch, model load) is included: it is what a user waits for. The two runs' codes are
compared file by file; a mismatch is reported (it would be a bug: ranks must give exactly the
codes of one process). On a machine where another job holds a core, N ranks cannot scale.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from audiotok.data.manifest import load_entries, write_manifest
from audiotok.data.shards import TokenShards


def run(cmd: list[str]) -> float:
    """Wall seconds of ``cmd`` (which must succeed)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:6])} ... failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest")
    ap.add_argument("--model", default="default")
    ap.add_argument("--files", type=int, default=40, help="The first N files of the manifest.")
    ap.add_argument("--ranks", type=int, default=2)
    args = ap.parse_args()
    entries = load_entries(args.manifest)[: args.files]
    seconds = sum(e.duration for e in entries)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "list.jsonl"
        write_manifest(entries, listing)
        base = [sys.executable, "-m", "audiotok", "tokenize", str(listing), "--model", args.model]
        one = run([*base, "-o", str(Path(tmp) / "one"), "--dev-fraction", "0"])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.ranks}"]
        launch += ["--master_port", str(port), "-m", "audiotok", "tokenize", str(listing)]
        launch += ["--model", args.model, "-o", str(Path(tmp) / "many"), "--dev-fraction", "0"]
        many = run(launch)
        a, b = TokenShards(Path(tmp) / "one"), TokenShards(Path(tmp) / "many")
        by_id = {row["id"]: a.codes(i) for i, row in enumerate(a.files)}
        same = all(np.array_equal(b.codes(i), by_id[r["id"]]) for i, r in enumerate(b.files))
    rows = [("1 process", one), (f"{args.ranks} ranks (torchrun, gloo)", many)]
    print(f"{len(entries)} files, {seconds:.0f} s of audio, model {args.model}, 1 thread per rank")
    print("| run | wall s | audio s / s | speed-up |")
    print("|---|---|---|---|")
    for name, wall in rows:
        print(f"| {name} | {wall:.1f} | {seconds / wall:.1f} | {one / wall:.2f}x |")
    print(f"codes identical across runs: {same}")
    print(json.dumps({"files": len(entries), "audio_s": seconds, "one": one, "many": many}))


if __name__ == "__main__":
    main()
