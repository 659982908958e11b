"""Exported models carry a format version; older ones are migrated, newer ones refused.

The renames here are simulated: an export is rewritten as an older audiotok would have
written it (an old key name, an old config field, a transposed tensor), the library is made
one format newer with a migration step, and the export must load to identical codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_hub import tiny_soundstream

from audiotok import hub, migrations
from audiotok.errors import UserError
from audiotok.migrations import Migration
from audiotok.registry import MODEL_FAMILIES

WAV = torch.randn(2, 1, 700, generator=torch.Generator().manual_seed(0))


def _export(tmp_path: Path) -> tuple[Path, torch.Tensor]:
    model = tiny_soundstream().eval()
    return hub.save_pretrained(model, tmp_path / "m"), model.encode(WAV)


def _edit_config(dest: Path, **changes: object) -> None:
    path = dest / "config.json"
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info))


def _rewrite_weights(dest: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = dest / "model.safetensors"
    state = load_file(str(path))
    save_file({k: v.contiguous() for k, v in edit(state).items()}, str(path))


def _one_format_newer(monkeypatch: pytest.MonkeyPatch, *steps: Migration) -> None:
    """Make the library format 2 with ``steps`` for soundstream."""
    monkeypatch.setattr(migrations, "FORMAT_VERSION", 2)
    monkeypatch.setattr(hub, "FORMAT_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {"soundstream": steps})


def test_exports_record_the_format_and_a_missing_one_is_version_1(tmp_path: Path) -> None:
    dest, codes = _export(tmp_path)
    raw = json.loads((dest / "config.json").read_text())
    assert raw["format_version"] == migrations.FORMAT_VERSION == 1
    assert hub.read_pretrained_info(dest).format_version == 1
    _edit_config(dest, format_version=None)  # how the bundled default is written
    assert hub.read_pretrained_info(dest).format_version == 1
    assert torch.equal(hub.load_pretrained(dest).encode(WAV), codes)


def test_the_bundled_default_records_format_1() -> None:
    # the first default was written before format versions (no key: read as 1, tested above);
    # v2 records it, so a future format bump must migrate it, not guess
    raw = json.loads((hub.DEFAULT_MODEL_DIR / "config.json").read_text())
    assert raw["format_version"] == 1
    assert hub.read_pretrained_info(hub.DEFAULT_MODEL_DIR).format_version == 1


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (2, r"made by a newer audiotok \(0\.9\.0, format 2; this one reads formats up to 1\)"),
        (0, "format_version 0 is not an int >= 1"),
        ("1", "format_version '1' is not an int >= 1"),
        (True, "format_version True is not an int >= 1"),
        (1.5, "format_version 1.5 is not an int >= 1"),
    ],
)
def test_newer_or_invalid_formats_are_refused(
    tmp_path: Path, version: object, message: str
) -> None:
    dest, _ = _export(tmp_path)
    _edit_config(dest, format_version=version, audiotok_version="0.9.0")
    for call in (hub.read_pretrained_info, hub.load_pretrained, hub.load):
        with pytest.raises(UserError, match=message) as info:
            call(dest)
        assert str(info.value).startswith(str(dest / "config.json"))
        assert "\n" not in str(info.value)


def test_a_renamed_parameter_is_migrated_to_identical_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest, codes = _export(tmp_path)
    # as format 1 wrote it: the residual stages were 'layers', the codebook was 'embed'
    _rewrite_weights(
        dest,
        lambda s: {
            k.replace("quantizer.stages.", "quantizer.layers.").replace(".codebook", ".embed"): v
            for k, v in s.items()
        },
    )
    _edit_config(dest, format_version=1)
    _one_format_newer(monkeypatch)
    with pytest.raises(UserError) as info:  # no step: the error names the keys in full
        hub.load_pretrained(dest)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{dest / 'model.safetensors'}: weights do not fit the soundstream")
    assert (
        "missing quantizer.stages.0.codebook, quantizer.stages.1.codebook, "
        "quantizer.stages.2.codebook; unexpected quantizer.layers.0.embed, "
        "quantizer.layers.1.embed, quantizer.layers.2.embed"
    ) in message
    renames = {f"quantizer.layers.{i}.embed": f"quantizer.stages.{i}.codebook" for i in range(3)}
    _one_format_newer(monkeypatch, Migration(1, renames))
    assert torch.equal(hub.load_pretrained(dest).encode(WAV), codes)
    # a prefix rename (a moved module) with a function for the rest does the same
    step = Migration(
        1,
        {"quantizer.layers.": "quantizer.stages."},
        state=lambda s: {k.replace(".embed", ".codebook"): v for k, v in s.items()},
    )
    _one_format_newer(monkeypatch, step)
    assert torch.equal(hub.load_pretrained(dest).encode(WAV), codes)
    tok = hub.load(dest)
    assert torch.equal(tok.encode(WAV.numpy(), sample_rate=8000), codes)
    # token files made before the migration still name this model
    assert tok.model_id == json.loads((dest / "config.json").read_text())["model_id"]


def test_state_and_config_steps_run_in_order_and_only_from_the_exports_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest, codes = _export(tmp_path)
    # format 1 stored codebooks transposed and called latent_dim 'dim'
    _rewrite_weights(dest, lambda s: {k: v.T if "codebook" in k else v for k, v in s.items()})
    raw = json.loads((dest / "config.json").read_text())
    config = dict(raw["config"])
    config["dim"] = config.pop("latent_dim")
    _edit_config(dest, format_version=1, config=config)
    seen: list[int] = []

    def transpose(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        seen.append(2)  # after the rename step of the same format
        return {k: v.T if "codebook" in k else v for k, v in state.items()}

    def rename_dim(c: dict[str, object]) -> dict[str, object]:
        seen.append(1)
        c["latent_dim"] = c.pop("dim")
        return c

    _one_format_newer(monkeypatch, Migration(1, state=transpose, config=rename_dim))
    assert torch.equal(hub.load_pretrained(dest).encode(WAV), codes)
    assert seen == [1, 2]
    # an export already in the current format is not migrated again
    model = tiny_soundstream().eval()
    fresh = hub.save_pretrained(model, tmp_path / "fresh")
    assert json.loads((fresh / "config.json").read_text())["format_version"] == 2
    seen.clear()
    assert torch.equal(hub.load_pretrained(fresh).encode(WAV), codes)
    assert seen == []


def test_a_failing_step_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest, _ = _export(tmp_path)
    _edit_config(dest, format_version=1)
    clash = {"quantizer.stages.0.codebook": "quantizer.stages.1.codebook"}
    _one_format_newer(monkeypatch, Migration(1, clash))
    with pytest.raises(UserError, match=r"cannot bring format 1 up to date \(soundstream") as info:
        hub.load_pretrained(dest)
    assert "clashes" in str(info.value) and "\n" not in str(info.value)
    _one_format_newer(monkeypatch, Migration(1, config=lambda c: c["no_such_field"]))
    with pytest.raises(UserError, match=r"bad soundstream config \(soundstream format 1 -> 2"):
        hub.load_pretrained(dest)


def test_renames_exact_names_before_prefixes() -> None:
    state = {"a.x": 1, "a.y": 2, "b": 3}
    out = migrations._rename(state, {"a.": "c.", "a.y": "d", "missing": "e"})
    assert out == {"c.x": 1, "d": 2, "b": 3}


def test_the_migration_table_is_consistent() -> None:
    # every step belongs to a registered family, leads to a format this library writes and
    # appears once: a step from the current format would never run
    for family, steps in migrations.MIGRATIONS.items():
        assert family in MODEL_FAMILIES, family
        versions = [m.from_version for m in steps]
        assert len(set(versions)) == len(versions), family
        assert all(1 <= v < migrations.FORMAT_VERSION for v in versions), family
    assert hub.FORMAT_VERSION == migrations.FORMAT_VERSION
