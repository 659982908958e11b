"""DDP: two gloo CPU processes train the tiny recipe and end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, recipe: dict[str, Any], out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    from audiotok.training.config import config_from_dict
    from audiotok.training.ddp import cleanup_distributed, init_distributed, unwrap
    from audiotok.training.trainer import Trainer

    info = init_distributed("cpu")
    try:
        trainer = Trainer(config_from_dict(recipe), dist=info)
        seen = [trainer.sampler.indices()]
        result = trainer.fit()
        torch.save(
            {
                "model": unwrap(trainer.model).state_dict(),
                "disc": unwrap(trainer.disc).state_dict(),
                "indices": torch.tensor(seen[0]),
                "checkpoint": str(result.checkpoint),
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        cleanup_distributed()


@pytest.mark.parametrize("freeze", [[], ["encoder"]])
def test_two_gloo_ranks_stay_identical(
    tiny_recipe: dict[str, Any], tmp_path: Path, freeze: list[str]
) -> None:
    tiny_recipe["freeze"] = freeze  # frozen parameters are left out of DDP's all-reduce
    tiny_recipe["optim"]["max_steps"] = 3
    tiny_recipe["discriminator"]["start_step"] = 1
    tiny_recipe["checkpoint"]["every"] = 3
    # fork (not spawn): the children reuse this process's imports (torch, librosa, ...) and
    # start in milliseconds instead of seconds; nothing here has touched CUDA
    import librosa.filters  # noqa: F401  (imported lazily by the mel loss)
    import torch._dynamo  # noqa: F401  (imported lazily by the optimisers)

    import audiotok.training.trainer  # noqa: F401

    args = (2, _free_port(), tiny_recipe, str(tmp_path))
    mp.start_processes(_worker, args=args, nprocs=2, join=True, start_method="fork")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # each rank read its own half of the epoch ...
    assert set(r0["indices"].tolist()).isdisjoint(r1["indices"].tolist())
    # ... and yet weights, discriminator and quantizer EMA buffers agree exactly
    for part in ("model", "disc"):
        assert r0[part].keys() == r1[part].keys()
        for name, value in r0[part].items():
            assert torch.equal(value, r1[part][name]), f"{part}.{name} differs between ranks"
    if freeze:  # the frozen encoder is where the recipe's seed put it, on both ranks
        from audiotok.training.trainer import _seed_all, build_model

        _seed_all(tiny_recipe["seed"])
        init = build_model("soundstream", tiny_recipe["model"]["config"]).state_dict()
        for name, value in init.items():
            if name.startswith("encoder."):
                assert torch.equal(value, r0["model"][name]), name
    # only rank 0 writes checkpoints; it holds both ranks' RNG states
    assert r1["checkpoint"] == "None"
    state = torch.load(r0["checkpoint"], weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])


def _report_worker(rank: int, world_size: int, port: int, recipe: dict[str, Any], out: str) -> None:
    """Build the trainer (not train) and save the warnings this rank emitted meanwhile."""
    import json
    import warnings

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))  # fmt: skip
    torch.set_num_threads(1)
    from audiotok.training.config import config_from_dict
    from audiotok.training.ddp import cleanup_distributed, init_distributed
    from audiotok.training.trainer import Trainer

    info = init_distributed("cpu")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = Trainer(config_from_dict(recipe), dist=info)
        lines = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        result = {"lines": lines, "files": len(trainer.train_set.entries)}
        (Path(out) / f"report{rank}.json").write_text(json.dumps(result))
    finally:
        cleanup_distributed()


def test_only_rank0_reports_dropped_files(
    tiny_recipe: dict[str, Any], wav_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    import json
    import shutil

    data = tmp_path / "train"
    shutil.copytree(wav_dirs[0], data)
    (data / "broken.wav").write_bytes(b"RIFF" + bytes(40))
    tiny_recipe["data"]["train"] = str(data)
    import audiotok.training.trainer  # noqa: F401

    args = (2, _free_port(), tiny_recipe, str(tmp_path))
    mp.start_processes(_report_worker, args=args, nprocs=2, join=True, start_method="fork")
    r0, r1 = (json.loads((tmp_path / f"report{r}.json").read_text()) for r in (0, 1))
    assert r0["files"] == r1["files"] == 6  # both ranks dropped the file ...
    assert r0["lines"][0].startswith(f"{data / 'broken.wav'}: dropped (")  # ... rank 0 said so
    assert r0["lines"][1] == f"{data}: 6 of 7 files kept, 1 dropped"
    assert r1["lines"] == []


@pytest.mark.slow
def test_torchrun_runs_the_cli(tiny_recipe: dict[str, Any], tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2 -m audiotok train`` (the documented command)."""
    tiny_recipe["optim"]["max_steps"] = 2
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += ["--master_port", str(_free_port()), "-m", "audiotok", "train", str(recipe)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    state = torch.load(
        Path(tiny_recipe["run_dir"]) / "checkpoints" / "step_00000002.pt", weights_only=True
    )
    assert state["world_size"] == 2
