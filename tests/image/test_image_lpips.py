"""LPIPS from a user-supplied, hash-checked safetensors file (random weights, small VGG)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from audiotok.errors import UserError
from audiotok.image.lpips import LPIPS, convert_vgg16_lpips, read_safetensors, sha256_of

SMALL = {"widths": (4, 8, 8), "convs_per_stage": (1, 2, 1)}


def _weights(tmp_path: Path) -> tuple[Path, str, dict[str, torch.Tensor]]:
    model = LPIPS(**SMALL)
    state = {
        k: torch.randn_like(v) for k, v in model.state_dict().items() if k not in ("shift", "scale")
    }
    state = {k: v.abs() if k.startswith("lins") else v for k, v in state.items()}
    path = tmp_path / "lpips.safetensors"
    save_file(state, str(path))
    return path, sha256_of(path), state


def test_loads_checked_weights_and_measures_distance(tmp_path: Path) -> None:
    path, digest, state = _weights(tmp_path)
    lpips = LPIPS.from_file(path, digest, **SMALL)
    assert torch.equal(lpips.lins[1].weight, state["lins.1.weight"])
    assert not any(p.requires_grad for p in lpips.parameters())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(lpips(x, x), torch.zeros(2))
    near = lpips(x, x + 0.05 * torch.randn_like(x))
    far = lpips(x, x + 0.5 * torch.randn_like(x))
    assert (near > 0).all() and (far > near).all()
    torch.testing.assert_close(lpips(x, far.new_zeros(x.shape)), lpips(far.new_zeros(x.shape), x))
    y = x.clone().requires_grad_()
    lpips(y, x + 0.3).sum().backward()  # usable as a loss: gradients reach the image
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    assert lpips(x[:, :1], x[:, :1]).shape == (2,)  # grey is repeated to RGB


def test_hash_mismatch_and_bad_files_are_refused(tmp_path: Path) -> None:
    path, digest, state = _weights(tmp_path)
    with pytest.raises(UserError, match="does not match the expected"):
        LPIPS.from_file(path, "0" * 64, **SMALL)
    with pytest.raises(UserError, match="not found"):
        LPIPS.from_file(tmp_path / "missing.safetensors", digest)
    with pytest.raises(UserError, match="keys differ"):
        LPIPS.from_file(path, digest)  # the default VGG16 layout has other keys
    state.pop("lins.0.weight")
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(UserError, match="keys differ"):
        LPIPS.from_file(
            tmp_path / "partial.safetensors", sha256_of(tmp_path / "partial.safetensors"), **SMALL
        )
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match="not a safetensors file"):
        read_safetensors(tmp_path / "junk.safetensors")


def test_vgg16_key_conversion_fits_the_default_layout() -> None:
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    vgg = {f"features.{i}.{p}": torch.zeros(1) for i in convs for p in ("weight", "bias")}
    lins = {f"lin{s}.model.1.weight": torch.zeros(1) for s in range(5)}
    converted = convert_vgg16_lpips(vgg, lins)
    expected = {k for k in LPIPS().state_dict() if k not in ("shift", "scale")}
    assert set(converted) == expected
