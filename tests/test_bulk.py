"""Bulk tokenization into shards: every good file once with the codes encode_file gives,
bad files reported, resumable, split across ranks without changing any file's codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tiny_tokenizer import tiny_tokenizer

from audiotok.bulk import tokenize_corpus
from audiotok.data.shards import TokenShards
from audiotok.errors import UserError
from audiotok.tokenizer import AudioTokenizer


def _tok(seed: int = 0) -> AudioTokenizer:
    return tiny_tokenizer(seed)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "audio"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        sf.write(root / f"clip{i}.wav", rng.standard_normal(800 + 97 * i) * 0.1, 8000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00not audio")
    rows = [{"path": f"clip{i}.wav", "kind": "speech" if i % 2 else "music"} for i in range(5)]
    (root / "list.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_folder_to_shards_matches_encode_file(corpus: Path, tmp_path: Path) -> None:
    tok = _tok()
    seen: list[tuple[str, str | None]] = []
    res = tokenize_corpus(tok, [corpus], tmp_path / "tok", on_file=lambda p, e: seen.append((p, e)))
    assert res.encoded == 5 and len(res.failed) == 1 and "broken.wav" in res.failed[0][0]
    assert res.meta["files"] == 5 and res.meta["tokenizer"]["model_id"] == tok.model_id
    assert len(seen) == 6
    shards = TokenShards(tmp_path / "tok", model_id=tok.model_id, verify=True)
    for i, row in enumerate(shards.files):
        codes, _ = tok.encode_file(row["path"])
        np.testing.assert_array_equal(shards.codes(i), codes.numpy())  # (K, T)
    # a second run finds everything done
    again = tokenize_corpus(tok, [corpus], tmp_path / "tok")
    assert (again.encoded, again.skipped) == (0, 5)
    # another tokenizer's folder is refused
    with pytest.raises(UserError, match="holds tokens of model"):
        tokenize_corpus(_tok(seed=1), [corpus], tmp_path / "tok")


def test_ranks_split_the_files_and_agree_with_one_process(corpus: Path, tmp_path: Path) -> None:
    tok = _tok()
    one = tmp_path / "one"
    tokenize_corpus(tok, [corpus / "list.jsonl"], one)
    two = tmp_path / "two"
    r1 = tokenize_corpus(tok, [corpus / "list.jsonl"], two, rank=1, world_size=2)
    r0 = tokenize_corpus(tok, [corpus / "list.jsonl"], two, rank=0, world_size=2)
    assert (r0.encoded, r1.encoded) == (3, 2)
    a, b = TokenShards(one), TokenShards(two)
    assert {s["name"].split("-")[1] for s in b.meta["shards"]} == {"r0", "r1"}
    by_id = {row["id"]: a.codes(i) for i, row in enumerate(a.files)}
    assert sorted(by_id) == sorted(row["id"] for row in b.files)
    for i, row in enumerate(b.files):
        np.testing.assert_array_equal(b.codes(i), by_id[row["id"]])
        assert row["kind"] in ("speech", "music")  # manifest fields carried along
    split_a = {r["id"]: r["split"] for r in a.files}
    assert all(split_a[r["id"]] == r["split"] for r in b.files)  # by source, not by rank


def test_two_gloo_ranks_give_the_codes_of_one_process(corpus: Path, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2 -m audiotok tokenize`` (real processes, gloo)."""
    import os
    import socket
    import subprocess
    import sys

    from audiotok.hub import save_pretrained

    model_dir = save_pretrained(_tok().model, tmp_path / "model")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += ["--master_port", str(port), "-m", "audiotok", "tokenize", str(corpus / "list.jsonl")]
    cmd += ["-o", str(tmp_path / "two"), "--model", str(model_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rank 0:" in out.stdout and "rank 1:" in out.stdout
    tokenize_corpus(_load(model_dir), [corpus / "list.jsonl"], tmp_path / "one")
    a, b = TokenShards(tmp_path / "one"), TokenShards(tmp_path / "two", verify=True)
    assert {s["name"].split("-")[1] for s in b.meta["shards"]} == {"r0", "r1"}
    by_id = {row["id"]: a.codes(i) for i, row in enumerate(a.files)}
    assert sorted(by_id) == sorted(row["id"] for row in b.files)
    for i, row in enumerate(b.files):
        np.testing.assert_array_equal(b.codes(i), by_id[row["id"]])


def _load(path: Path) -> AudioTokenizer:
    from audiotok.hub import load

    return load(str(path))
