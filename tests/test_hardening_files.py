"""Issue 11: outputs never destroy a user's file, writes are race-safe and respect the umask,
OS errors and interrupts are one line, and `-o` never makes a folder named like a file."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiotok import hub
from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.cli import app
from audiotok.codes import read_codes, write_codes
from audiotok.errors import UserError

TEMP_MARK = ".audiotok-tmp-"  # how audiotok names its temporary files
RVQ = {"type": "residual", "num_codebooks": 3, "stage": {"type": "vq", "codebook_size": 16}}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=8000, ratios=(2, 4), encoder_channels=4, latent_dim=8, decoder="seanet",
        decoder_channels=4, quantizer=RVQ,
    )  # fmt: skip
    return str(hub.save_pretrained(SoundStream(config), tmp_path_factory.mktemp("m") / "m"))


def _noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, channels)) * 0.1).astype(np.float32)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# ---- data loss ------------------------------------------------------------------------------


def test_decode_force_never_replaces_the_recording(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "song.wav", _noise(800), 8000)
    recording = (tmp_path / "song.wav").read_bytes()
    assert run("encode", str(tmp_path / "song.wav"), "-m", model)[0] == 0
    assert run("decode", str(tmp_path / "song.npy"), "-m", model)[0] == 0
    code, _, err = run("decode", str(tmp_path / "song.npy"), "-m", model)
    # the message names the file decode would write, not the recording
    out = tmp_path / "song.decoded.wav"
    assert code == 1 and err.strip() == (
        f"error: {out}: output already exists (use --force to overwrite)"
    )
    before = out.stat().st_mtime_ns
    code, _, _ = run("decode", str(tmp_path / "song.npy"), "-m", model, "--force")
    assert code == 0 and (tmp_path / "song.wav").read_bytes() == recording
    assert out.stat().st_mtime_ns >= before and sf.info(out).frames == 800
    # into an -o folder that holds the recordings too: same rule
    code, _, _ = run("decode", str(tmp_path), "-o", str(tmp_path), "-m", model, "--force")
    assert code == 0 and (tmp_path / "song.wav").read_bytes() == recording


def test_decode_replaces_its_own_output_with_force(tmp_path: Path, model: str) -> None:
    # tokens without a recording beside them: song.wav is decode's own output
    sf.write(tmp_path / "src.wav", _noise(500), 8000)
    assert run("encode", str(tmp_path / "src.wav"), "-o", str(tmp_path / "t"), "-m", model)[0] == 0
    tokens = tmp_path / "t" / "src.npy"
    assert run("decode", str(tokens), "-m", model)[0] == 0
    code, _, err = run("decode", str(tokens), "-m", model)
    assert code == 1 and f"error: {tmp_path / 't' / 'src.wav'}: output already exists" in err
    assert run("decode", str(tokens), "-m", model, "--force")[0] == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["src.npy", "src.wav"]


def test_export_force_keeps_the_users_other_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=8000, ratios=(2, 4), encoder_channels=4, latent_dim=8, decoder="seanet",
        decoder_channels=4, quantizer=RVQ,
    )  # fmt: skip
    first, second = SoundStream(config), SoundStream(config)
    dest = tmp_path / "model"
    (dest / "notes").mkdir(parents=True)
    (dest / "README.md").write_text("my notes")
    (dest / "notes" / "eval.txt").write_text("scores")
    hub.save_pretrained(first, dest)  # a folder without an export may hold other files
    with pytest.raises(UserError, match="already holds an exported model"):
        hub.save_pretrained(second, dest)
    hub.save_pretrained(second, dest, model_id="second", force=True)
    assert (dest / "README.md").read_text() == "my notes"
    assert (dest / "notes" / "eval.txt").read_text() == "scores"
    assert hub.read_pretrained_info(dest).model_id == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert not [p for p in dest.iterdir() if TEMP_MARK in p.name]


def test_outputs_respect_the_umask(tmp_path: Path, model: str, umask022: None) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", model)[0] == 0
    assert _mode(tmp_path / "a.npy") == 0o644
    assert run("encode", str(tmp_path / "a.wav"), "-m", model, "--force")[0] == 0
    assert _mode(tmp_path / "a.npy") == 0o644  # --force used to make it 0600
    assert (
        run("decode", str(tmp_path / "a.npy"), "-m", model, "-o", str(tmp_path / "b.flac"))[0] == 0
    )
    assert _mode(tmp_path / "b.flac") == 0o644
    os.umask(0o077)
    assert run("encode", str(tmp_path / "a.wav"), "-m", model, "--force", "-f", "npz")[0] == 0
    assert _mode(tmp_path / "a.npz") == 0o600


def test_no_overwrite_holds_when_another_writer_wins_the_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audiotok.codes as codes_mod

    dest = tmp_path / "a.npy"
    real = codes_mod.check_destination

    def racing(path: Path, force: bool) -> Path:  # another process writes after our check
        out = real(path, force)
        Path(path).write_bytes(b"the other process's file")
        return out

    monkeypatch.setattr(codes_mod, "check_destination", racing)
    with pytest.raises(UserError, match="already exists"):
        write_codes(dest, np.zeros((2, 3), np.int64))
    assert dest.read_bytes() == b"the other process's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]  # no temp file left


def test_concurrent_writers_exactly_one_succeeds(tmp_path: Path) -> None:
    dest = tmp_path / "a.npy"
    start = threading.Barrier(6)
    results: list[int | str] = []

    def writer(i: int) -> None:
        start.wait()
        try:
            write_codes(dest, np.full((2, 4000), i, np.int64))
            results.append(i)
        except UserError as e:
            results.append(str(e))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1 and len(results) == 6
    assert all("already exists" in r for r in results if isinstance(r, str))
    assert int(read_codes(dest)[0][0, 0]) == winners[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


def test_stale_temp_files_are_ignored_and_cleaned(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    # what a `kill -9` during a write leaves: hidden, clearly named, from a dead process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from audiotok.atomic import HOST_TAG

    stale_npy = tmp_path / f".a.npy{TEMP_MARK}{HOST_TAG}-{dead.pid}-0123abcd"
    stale_wav = tmp_path / f".b.wav{TEMP_MARK}{HOST_TAG}-{dead.pid}-0123abcd"
    other_host = tmp_path / f".a.npy{TEMP_MARK}ffffff-{dead.pid}-0123abcd"
    other_host.write_bytes(b"another machine's write in a shared folder")
    stale_npy.write_bytes(b"half a token file")
    sf.write(stale_wav, _noise(100), 8000, format="WAV")
    code, out, err = run("encode", str(tmp_path), "-m", model)
    assert code == 0 and "encoded 1 file(s), 0 failed" in out and err == ""
    assert not stale_npy.exists()  # the next write to a.npy removed it
    assert other_host.exists()  # its pid means nothing here
    code, out, _ = run("encode", str(tmp_path / "*"), "-o", str(tmp_path / "o"), "-m", model)
    assert code == 0 and "encoded 1 file(s)" in out
    code, out, _ = run("decode", str(tmp_path), "-o", str(tmp_path / "d"), "-m", model)
    assert code == 0 and "decoded 2 file(s)" in out  # a.npy and o/a.npy, no temp file


# ---- everyday OS errors and -o --------------------------------------------------------------


def _one_line_error(code: int, err: str, path: Path, words: str) -> None:
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"error: {path}: ") and words in err, err


def test_disk_full_and_permission_denied(
    tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(np.lib.format, "write_array", full)
        code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", model)
    _one_line_error(code, err, tmp_path / "a.npy", "disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    assert run("encode", str(tmp_path / "a.wav"), "-m", model)[0] == 0
    with monkeypatch.context() as m:
        m.setattr(sf.SoundFile, "write", full)
        code, _, err = run(
            "decode", str(tmp_path / "a.npy"), "-m", model, "-o", str(tmp_path / "x.wav")
        )
    _one_line_error(code, err, tmp_path / "x.wav", "disk full")
    assert not (tmp_path / "x.wav").exists()

    def denied(path: object, *args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with monkeypatch.context() as m:
        m.setattr("audiotok.atomic.os.open", denied)
        code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", model, "--force")
    _one_line_error(code, err, tmp_path / "a.npy", "permission denied")


def test_a_folder_or_device_in_the_way(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    (tmp_path / "a.npy").mkdir()
    for extra in ([], ["--force"]):
        code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", model, *extra)
        _one_line_error(code, err, tmp_path / "a.npy", "is a directory")
    assert (tmp_path / "a.npy").is_dir()
    assert run("encode", str(tmp_path / "a.wav"), "-m", model, "-o", str(tmp_path / "t"))[0] == 0
    tokens = str(tmp_path / "t" / "a.npy")
    for command, src in (("encode", str(tmp_path / "a.wav")), ("decode", tokens)):
        code, _, err = run(command, src, "-m", model, "-o", "/dev/null", "--force")
        _one_line_error(code, err, Path("/dev/null"), "not a folder")
    code, _, err = run("decode", tokens, "-m", model, "-o", str(tmp_path / "a.npy.wav"))
    assert code == 0
    (tmp_path / "dir.wav").mkdir()
    code, _, err = run("decode", tokens, "-m", model, "-o", str(tmp_path / "dir.wav"), "--force")
    _one_line_error(code, err, tmp_path / "dir.wav", "folder")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_out_named_like_a_file(tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", _noise(300), 8000)
    two = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    code, out, err = run("encode", *two, "-m", model, "-o", str(tmp_path / "out.npy"))
    _one_line_error(code, err, tmp_path / "out.npy", "2 inputs")
    assert not (tmp_path / "out.npy").exists() and out == ""
    code, _, err = run("encode", two[0], "-m", model, "-o", str(tmp_path / "out.wav"))
    _one_line_error(code, err, tmp_path / "out.wav", "writes .npy, .npz files")
    # one input and a token file name: that file
    code, _, _ = run("encode", two[0], "-m", model, "-o", str(tmp_path / "one.npz"))
    assert code == 0 and read_codes(tmp_path / "one.npz")[1] is not None
    code, _, err = run("encode", two[0], "-m", model, "-o", str(tmp_path / "z.npy"), "-f", "npz")
    _one_line_error(code, err, tmp_path / "z.npy", "--format npz needs a .npz")
    assert run("encode", *two, "-m", model, "-o", str(tmp_path / "tok"))[0] == 0
    code, _, err = run("decode", str(tmp_path / "tok"), "-m", model, "-o", str(tmp_path / "x.wav"))
    _one_line_error(code, err, tmp_path / "x.wav", "2 inputs")
    code, _, err = run(
        "decode", str(tmp_path / "one.npz"), "-m", model, "-o", str(tmp_path / "y.npy")
    )
    _one_line_error(code, err, tmp_path / "y.npy", "writes")
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "y.npy").exists()
    monkeypatch.chdir(tmp_path)
    code, _, err = run("encode", two[0], "-m", model, "-o", "-")
    assert code == 1 and err.startswith("error: -o -: ") and not (tmp_path / "-").exists()


# ---- interfaces -----------------------------------------------------------------------------


def test_bitrate_is_kbps_on_the_ladder(tmp_path: Path, model: str) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    for bad in ("8000", "5", "0"):
        code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", model, "--bitrate", bad)
        assert code == 1 and "valid bitrates: 4, 8, 12 kbps" in err, err
        assert err.strip().count("\n") == 0
    assert not (tmp_path / "a.npy").exists()
    code, out, _ = run("encode", str(tmp_path / "a.wav"), "-m", model, "--bitrate", "4")
    assert code == 0 and "1 codebooks" in out and read_codes(tmp_path / "a.npy")[0].shape[0] == 1
    code, _, err = run(
        "eval", str(tmp_path / "a.wav"), "-m", model, "-b", "8000", "-o", str(tmp_path / "r"),
        "--no-opus", "--no-visqol",
    )  # fmt: skip
    assert code == 1 and "valid bitrates: 4, 8, 12 kbps" in err and not (tmp_path / "r").exists()


def test_eval_exits_nonzero_when_files_fail(tmp_path: Path, model: str, umask022: None) -> None:
    sf.write(tmp_path / "good.wav", _noise(1600), 8000)
    (tmp_path / "bad.wav").write_text("not audio")
    code, _, err = run(
        "eval", str(tmp_path / "good.wav"), str(tmp_path / "bad.wav"), "-m", model,
        "-o", str(tmp_path / "r"), "--no-opus", "--no-visqol", "-b", "12",
    )  # fmt: skip
    assert code == 1, err
    assert f"error: {tmp_path / 'bad.wav'}: " in err and "1 failed" in err
    assert (tmp_path / "r" / "report.json").is_file()  # the good file is still reported
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert len(report["files"]) == 1 and len(report["failed"]) == 1
    assert _mode(tmp_path / "r" / "report.json") == _mode(tmp_path / "r" / "report.md") == 0o644


def test_ctrl_c_in_a_batch_exits_130_and_stops(
    tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiotok.tokenizer import AudioTokenizer

    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", _noise(300), 8000)
    calls: list[str] = []

    def interrupted(self: AudioTokenizer, path: Path, **kwargs: object) -> None:
        calls.append(str(path))
        raise KeyboardInterrupt

    monkeypatch.setattr(AudioTokenizer, "encode_file", interrupted)
    code, _, err = run("encode", str(tmp_path), "-m", model)
    assert code == 130 and "Traceback" not in err and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]


def _cli(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


def test_ctrl_c_during_start_up_exits_130() -> None:
    # an interrupt while the CLI imports typer (what a quick Ctrl-C hits)
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name == 'typer':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "sys.argv = ['audiotok', 'info']\n"
        "from audiotok.__main__ import main\n"
        "main()\n"
    )
    done = _cli(code)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "interrupted"


def test_real_sigint_exits_130_without_traceback(tmp_path: Path, model: str) -> None:
    # at several moments: importing, loading the model, encoding; an interrupt that lands
    # in code run by exec() used to end the process by SIGINT (-2) or as an "error:" line
    # long enough (about 4x the last delay here) that every interrupt lands before the exit
    sf.write(tmp_path / "long.wav", _noise(8000 * 2400), 8000)
    for delay in (0.3, 0.9, 1.2, 1.5, 3.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "audiotok", "encode", str(tmp_path / "long.wav"), "-m", model,
             "--force"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # a job started with '&' inherits SIGINT ignored, and Python then keeps it so
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 130 and "Traceback" not in err and "error" not in err, (
            delay,
            proc.returncode,
            err,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]


def test_unreadable_inputs_say_why(
    tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf.write(tmp_path / "a.wav", _noise(300), 8000)
    assert run("encode", str(tmp_path / "a.wav"), "-m", model)[0] == 0

    def denied(path: object, *args: object, **kwargs: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with monkeypatch.context() as m:  # root ignores chmod, so deny the read itself
        m.setattr("audiotok.audio_io.open", denied, raising=False)
        code, _, err = run("encode", str(tmp_path / "a.wav"), "-m", model, "--force")
    _one_line_error(code, err, tmp_path / "a.wav", "cannot read (permission denied)")
    with monkeypatch.context() as m:
        m.setattr("audiotok.codes.open", denied, raising=False)
        code, _, err = run("decode", str(tmp_path / "a.npy"), "-m", model)
    _one_line_error(code, err, tmp_path / "a.npy", "cannot read (permission denied)")
    assert run("encode", str(tmp_path / "a.wav"), "-m", model, "-f", "npz")[0] == 0
    with monkeypatch.context() as m:
        m.setattr("audiotok.codes.zipfile.ZipFile", denied)
        code, _, err = run("decode", str(tmp_path / "a.npz"), "-m", model)
    _one_line_error(code, err, tmp_path / "a.npz", "cannot read (permission denied)")
