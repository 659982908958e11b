"""`evaluate` and `audiotok eval`: report contents agree with metrics computed directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiotok.audio import SoundStream, SoundStreamConfig
from audiotok.cli import app
from audiotok.errors import UserError
from audiotok.eval import metrics
from audiotok.eval.opus import opus_available
from audiotok.eval.report import aggregate, evaluate, guess_kind, plan_bitrates
from audiotok.eval.visqol import visqol_available

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SR = 16000


class PerfectFake:
    """A tokenizer whose decode returns exactly what was last encoded (tests the plumbing)."""

    family = "fake"
    model_id = "fake0"
    sample_rate, channels, frame_rate = SR, 1, 100.0
    num_codebooks, codebook_size = 2, 16
    bitrates = [0.4, 0.8]  # kbps: 100 frames/s * 4 bits per codebook

    def encode(self, wav: np.ndarray, sample_rate: int, *, num_codebooks: int) -> torch.Tensor:
        assert sample_rate == SR and wav.shape[0] == 1
        self._last = torch.as_tensor(wav)
        frames = -(-wav.shape[-1] // 160)
        codes = torch.arange(frames * num_codebooks).reshape(num_codebooks, frames) % 5
        return codes[None]  # (1, k, T'): 5 of 16 codes used, uniformly

    def decode(self, codes: torch.Tensor, *, length: int) -> torch.Tensor:
        assert codes.shape[-1] == -(-length // 160)
        return self._last[None, :, :length].clone()


def _write_corpus(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(1.2 * SR)) / SR
    voiced = np.sign(np.sin(2 * np.pi * 140 * t)) * (np.sin(2 * np.pi * 3 * t) > 0)
    speech = 0.2 * voiced + 0.01 * rng.standard_normal(t.size)
    music = 0.2 * np.sin(2 * np.pi * 440 * t[: SR // 2])[None].repeat(2, 0)  # stereo, 0.5 s
    (root / "speech").mkdir(parents=True)
    (root / "music").mkdir()
    sf.write(root / "speech" / "a.wav", speech.astype(np.float32), SR)
    sf.write(root / "music" / "b.flac", music.T.astype(np.float32), 22050)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00not really audio")
    return [root / "speech" / "a.wav", root / "music" / "b.flac", root / "broken.wav"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    _write_corpus(tmp_path / "data")
    return tmp_path / "data"


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).ndim == 3


def test_perfect_tokenizer_report(corpus: Path, tmp_path: Path) -> None:
    use_visqol = visqol_available()
    report = evaluate(
        PerfectFake(), [corpus], out_dir=tmp_path / "rep", opus=True, visqol=use_visqol
    )
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    keys = {"model", "settings", "files", "results", "failed", "aggregates", "code_usage"}
    assert keys | {"timing", "figures"} <= set(data)
    assert [Path(f["path"]).name for f in data["failed"]] == ["broken.wav"]
    assert {Path(f["path"]).name: f["kind"] for f in data["files"]} == {
        "a.wav": "speech",
        "b.flac": "music",
    }
    tok_rows = [r for r in data["results"] if r["system"] == "tokenizer"]
    assert len(tok_rows) == 2 * 2  # two files x two bitrates
    for r in tok_rows:
        assert r["si_sdr"] > 80.0  # identical up to float32 rounding
        assert r["mel_distance"] == pytest.approx(0.0, abs=1e-6)
        assert r["stft_distance"] == pytest.approx(0.0, abs=1e-6)
        k = r["num_codebooks"]
        assert r["codebook_usage"] == pytest.approx([5 / 16] * k)
        assert r["codebook_entropy_bits"] == pytest.approx([np.log2(5)] * k, abs=0.02)
        assert r["bitrate_kbps"] == 0.4 * k
        assert r["bitrate_kbps"] <= r["actual_kbps"] < r["bitrate_kbps"] * 1.02
        if r["kind"] == "speech":
            assert r["stoi"] == pytest.approx(1.0, abs=1e-3)
        else:
            assert r["stoi"] is None and r["pesq"] is None
        if use_visqol and r["kind"] == "speech":
            assert r["visqol"] > 4.0
        if r["kind"] == "music":  # 0.5 s: too short for ViSQOL
            assert r["visqol"] is None
    opus_rows = [r for r in data["results"] if r["system"] == "opus"]
    if opus_available():
        assert sorted({r["bitrate_kbps"] for r in opus_rows}) == [6.0, 12.0]  # floor, bar
        assert all(r["si_sdr"] < 80.0 for r in opus_rows)
    else:
        assert opus_rows == [] and data["settings"]["opus_note"]
    agg = {(a["kind"], a["system"], a["bitrate_kbps"]): a for a in data["aggregates"]}
    assert agg[("speech", "tokenizer", 0.8)]["files"] == 1
    assert [u["num_codebooks"] for u in data["code_usage"]] == [1, 2]
    for rel in data["figures"]:
        _assert_png(tmp_path / "rep" / rel)
    assert "code_usage.png" in data["figures"] and len(data["figures"]) == 3
    text = report.markdown_path.read_text()
    assert "## Speech" in text and "## Music" in text and "broken.wav" in text


def test_manifest_kind_bitrate_choice_and_refusals(corpus: Path, tmp_path: Path) -> None:
    manifest = corpus / "set.jsonl"
    rows = [{"path": "speech/a.wav", "kind": "music"}, {"path": "missing.wav", "kind": "speech"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = evaluate(
        PerfectFake(), manifest, out_dir=tmp_path / "r", bitrates=[0.5], opus=False, visqol=False
    )
    assert [f["kind"] for f in report.files] == ["music"]  # the manifest wins over the path
    assert {r["bitrate_kbps"] for r in report.results} == {0.4}  # most codebooks that fit
    assert "missing.wav" in report.failed[0]["path"]
    with pytest.raises(UserError, match="not empty"):
        evaluate(PerfectFake(), manifest, out_dir=tmp_path / "r", opus=False, visqol=False)
    with pytest.raises(UserError, match="not available"):
        plan_bitrates(PerfectFake(), [0.3])
    with pytest.raises(UserError, match="no audio could be evaluated"):
        evaluate(PerfectFake(), corpus / "broken.wav", out_dir=tmp_path / "x", opus=False)


def test_guess_kind_and_aggregate() -> None:
    from audiotok.data.manifest import ManifestEntry

    assert guess_kind(ManifestEntry("/x/voices/a.wav")) == "speech"
    assert guess_kind(ManifestEntry("/x/Music/a.ogg")) == "music"
    assert guess_kind(ManifestEntry("/x/a.wav", extra={"kind": "speech"})) == "speech"
    assert guess_kind(ManifestEntry("/x/sfx/a.wav")) == "audio"
    rows = [
        {"kind": "speech", "system": "tokenizer", "bitrate_kbps": 1.5, "actual_kbps": 1.5}
        | {"si_sdr": s, "pesq": p}
        for s, p in [(2.0, None), (4.0, 3.0), (6.0, float("nan"))]
    ]
    (agg,) = aggregate(rows)
    assert agg["si_sdr"] == 4.0 and agg["pesq"] == 3.0 and agg["files"] == 3


def _tiny_model_dir(path: Path) -> Path:
    from audiotok.hub import save_pretrained

    torch.manual_seed(0)
    config = SoundStreamConfig(
        sample_rate=SR,
        ratios=(2, 4),
        encoder_channels=4,
        latent_dim=8,
        decoder="seanet",
        decoder_channels=4,
        quantizer={
            "type": "residual",
            "num_codebooks": 2,
            "stage": {"type": "vq", "codebook_size": 16},
        },
    )
    save_pretrained(SoundStream(config), path)
    return path


def test_cli_eval_real_tiny_model_matches_direct_metrics(corpus: Path, tmp_path: Path) -> None:
    from audiotok.audio_io import load_audio
    from audiotok.hub import load

    model = _tiny_model_dir(tmp_path / "model")
    out = tmp_path / "rep"
    args = ["eval", str(corpus), "-m", str(model), "-o", str(out), "--no-visqol", "-b", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # broken.wav failed: like encode and decode
    assert "SI-SDR" in result.stdout and "report:" in result.stdout
    assert "error: " in result.stderr and "broken.wav" in result.stderr
    data = json.loads((out / "report.json").read_text())
    # the report's numbers are the metrics of a plain encode/decode of the same audio
    tok = load(model)
    ref = load_audio(corpus / "speech" / "a.wav", sample_rate=SR, channels=1)
    est = tok.decode(tok.encode(ref, SR, num_codebooks=1), length=ref.shape[-1])[0]
    (row,) = [
        r for r in data["results"] if r["system"] == "tokenizer" and r["path"].endswith("a.wav")
    ]
    assert row["num_codebooks"] == 1
    assert row["si_sdr"] == pytest.approx(float(metrics.si_sdr(ref, est)), abs=1e-3)
    assert row["mel_distance"] == pytest.approx(float(metrics.mel_distance(ref, est, SR)), 1e-4)
    # a second run into the same folder needs --force
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.stderr
    forced = CliRunner().invoke(app, [*args, "--force", "--no-opus", "--max-seconds", "0.6"])
    assert forced.exit_code == 1 and "report:" in forced.stdout, forced.output
    assert json.loads((out / "report.json").read_text())["files"][0]["seconds"] <= 0.6


def test_cli_eval_bad_model_is_one_line(corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(corpus), "-m", str(tmp_path / "nope")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "Traceback" not in result.output


def test_report_names_files_relative_to_their_input(corpus: Path, tmp_path: Path) -> None:
    """Files found through a folder or a manifest are named relative to it, so a report
    moves between machines and names no home folder; a file given directly keeps its name."""
    manifest = corpus / "m.jsonl"
    manifest.write_text(json.dumps({"path": "speech/a.wav", "kind": "speech"}) + "\n")
    single = corpus / "music" / "b.flac"
    evaluate(
        PerfectFake(), [manifest, str(single)], out_dir=tmp_path / "rep", opus=False, visqol=False
    )
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert sorted(f["path"] for f in data["files"]) == sorted(["speech/a.wav", str(single)])
    evaluate(PerfectFake(), [corpus], out_dir=tmp_path / "rep2", opus=False, visqol=False)
    data = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert sorted(f["path"] for f in data["files"]) == ["music/b.flac", "speech/a.wav"]
    assert [f["path"] for f in data["failed"]] == ["broken.wav"]
    assert str(tmp_path) not in json.dumps(data["results"])
