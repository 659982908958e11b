"""Two gloo processes on CPU: EMA codebooks stay identical across ranks with different data."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from audiotok.quantize import DeadCodeRestart, EMAVectorQuantizer, KMeansInit, ResidualQuantizer

WORLD = 2


def _ema() -> EMAVectorQuantizer:
    return EMAVectorQuantizer(
        4, 16, init=KMeansInit(iters=3), restart=DeadCodeRestart(threshold=2.0)
    )


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)  # identical initial modules on every rank
        single = _ema().train()
        rvq = ResidualQuantizer.from_factory(_ema, 2, dropout=1.0).train()
        torch.manual_seed(100 + rank)  # different data and dropout draws per rank
        restarted = 0.0
        for step in range(4):
            batch = 0 if (rank == 1 and step == 2) else 6 + 5 * rank  # an empty batch too
            z = torch.randn(batch, 5, 4) * (1 + 2 * rank) + 3 * rank
            restarted += float(single(z).metrics["restarted"])
            rvq(z)
        state = {f"single.{k}": v for k, v in single.state_dict().items()}
        state.update({f"rvq.{k}": v for k, v in rvq.state_dict().items()})
        state["restarted"] = torch.tensor(restarted)
        save_file({k: v.contiguous() for k, v in state.items()}, f"{out_dir}/rank{rank}.st")
    finally:
        dist.destroy_process_group()


def test_ema_codebooks_identical_across_ranks(tmp_path: Path) -> None:
    context = mp.spawn(
        _worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=False
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise AssertionError("DDP workers hung (a collective was skipped on one rank)")
    states = [load_file(str(tmp_path / f"rank{r}.st")) for r in range(WORLD)]
    assert float(states[0]["restarted"]) > 0, "the test must exercise dead-code restarts"
    assert bool(states[0]["single.initialized"]) and bool(states[0]["rvq.stages.1.initialized"])
    for key, value in states[0].items():
        if key == "restarted":
            continue
        assert torch.equal(value, states[1][key]), f"{key} differs across ranks"
    # the EMA saw every step on both ranks (steps are counted identically)
    assert int(states[0]["single.steps"]) == 4
