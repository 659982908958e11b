"""LPIPS perceptual distance from weights the user supplies (Zhang et al., arXiv:1801.03924).

LPIPS compares unit-normalised activations of a frozen VGG-like network: for each tapped
layer l, ``d_l = mean_hw(sum_c w_l,c (f_l(x) - f_l(y))^2)`` with learned non-negative
channel weights ``w_l``, and ``LPIPS = sum_l d_l``. Inputs in ``[-1, 1]`` are shifted and
scaled per channel first (the constants of the reference implementation).

No weights ship with audiotok and nothing is downloaded: :meth:`LPIPS.from_file` loads a
``.safetensors`` file from a path the user gives, after checking its SHA-256 against the
hash the user also gives, and reads it with a small parser here (no pickle, no extra
dependency). The default layout is VGG16's (stages of 2, 2, 3, 3, 3 convolutions, widths
64..512, taps after each stage's last ReLU); :func:`convert_vgg16_lpips` renames the keys of
torchvision's ``vgg16().features`` state dict plus the reference ``lpips`` linear layers to
this module's, for users who convert those files themselves. Smaller VGG-like layouts work
the same way (the tests use random weights on one).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotok.errors import UserError

__all__ = ["LPIPS", "convert_vgg16_lpips", "read_safetensors", "sha256_of"]

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
_VGG16_CONVS = (2, 2, 3, 3, 3)
_VGG16_WIDTHS = (64, 128, 256, 512, 512)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors(path: str | os.PathLike) -> dict[str, Tensor]:
    """Float tensors of a ``.safetensors`` file (8-byte header length, JSON header, data).

    Raises:
        UserError: a header or offsets that do not fit the file, or a non-float dtype.
    """
    p = Path(path)
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 2 <= n <= len(raw) - 8:
        raise UserError(f"{p}: not a safetensors file")
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{p}: not a safetensors file (bad header)") from None
    data = memoryview(raw)[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype")) if isinstance(info, dict) else None
        if dtype is None:
            raise UserError(f"{p}: tensor {name!r} has an unsupported dtype")
        try:
            begin, end = (int(v) for v in info["data_offsets"])
            shape = [int(s) for s in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{p}: tensor {name!r} has a bad header entry") from None
        size = torch.empty(0, dtype=dtype).element_size()
        if not 0 <= begin <= end <= len(data) or end - begin != size * _prod(shape):
            raise UserError(f"{p}: tensor {name!r} does not fit the file")
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else None
        tensors[name] = flat.reshape(shape) if flat is not None else torch.empty(shape, dtype=dtype)
    return tensors


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


class LPIPS(nn.Module):
    """LPIPS on a VGG-like backbone; parameters are frozen (it is a loss, not a model).

    Args:
        widths: output channels of each stage.
        convs_per_stage: 3x3 convolutions in each stage (max-pooling 2x between stages).
        in_channels: 3; grey images are repeated to 3 channels in :meth:`forward`.

    Shapes:
        ``forward(x (B, C, H, W), y (B, C, H, W)) -> (B,)`` distances, 0 for ``x == y``.
    """

    def __init__(
        self,
        widths: Sequence[int] = _VGG16_WIDTHS,
        convs_per_stage: Sequence[int] = _VGG16_CONVS,
        *,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(widths) != len(convs_per_stage) or not widths:
            raise ValueError("widths and convs_per_stage need one entry per stage")
        self.stages = nn.ModuleList()
        ch = in_channels
        for width, n in zip(widths, convs_per_stage, strict=True):
            layers: list[nn.Module] = []
            for _ in range(n):
                layers += [nn.Conv2d(ch, width, 3, padding=1), nn.ReLU()]
                ch = width
            self.stages.append(nn.Sequential(*layers))
        self.lins = nn.ModuleList(nn.Conv2d(w, 1, 1, bias=False) for w in widths)
        for lin in self.lins:  # equal channel weights until loaded (the paper's baseline)
            nn.init.ones_(lin.weight)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        sha256: str,
        *,
        widths: Sequence[int] = _VGG16_WIDTHS,
        convs_per_stage: Sequence[int] = _VGG16_CONVS,
    ) -> LPIPS:
        """Build and load from a user-supplied ``.safetensors`` file with a known hash.

        Args:
            path: the weights (keys ``stages.{s}.{2i}.weight/bias``, ``lins.{s}.weight``).
            sha256: the expected hex SHA-256 of the file (required: never loaded unchecked).
            widths, convs_per_stage: the backbone layout the file was made for.

        Raises:
            UserError: a missing file, a hash mismatch, or keys/shapes that do not match.
        """
        p = Path(path)
        if not p.is_file():
            raise UserError(f"LPIPS weights not found: {p}")
        actual = sha256_of(p)
        if actual != sha256.strip().lower():
            raise UserError(f"{p}: SHA-256 {actual} does not match the expected {sha256}")
        model = cls(widths, convs_per_stage)
        state = read_safetensors(p)
        expected = {k for k in model.state_dict() if k not in ("shift", "scale")}
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise UserError(f"{p}: LPIPS keys differ (missing {missing[:3]}, extra {extra[:3]})")
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise UserError(f"{p}: LPIPS weights do not fit: {str(e).splitlines()[-1]}") from None
        return model

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Perceptual distance of two ``[-1, 1]`` image batches ``(B, C, H, W)`` -> ``(B,)``."""
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected two (B, 1|3, H, W) batches, got {x.shape}, {y.shape}")
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        fx, fy = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = x.new_zeros(x.shape[0])
        for i, (stage, lin) in enumerate(zip(self.stages, self.lins, strict=True)):
            if i:
                fx, fy = F.max_pool2d(fx, 2, ceil_mode=True), F.max_pool2d(fy, 2, ceil_mode=True)
            fx, fy = stage(fx), stage(fy)
            diff = (_unit(fx) - _unit(fy)) ** 2
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


def _unit(f: Tensor) -> Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)


def convert_vgg16_lpips(
    vgg_features: Mapping[str, Tensor], lpips_lins: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Rename torchvision ``vgg16().features`` keys (``"0.weight"`` ... ``"28.bias"``, with or
    without a ``features.`` prefix) and reference-``lpips`` keys (``"lin0.model.1.weight"``
    ...) to :class:`LPIPS`'s; save the result with safetensors and hash it yourself."""
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # conv indices in vgg16.features
    ours = [(s, 2 * i) for s, n in enumerate(_VGG16_CONVS) for i in range(n)]
    vgg = {k.removeprefix("features."): v for k, v in vgg_features.items()}
    out = {}
    for idx, (stage, pos) in zip(convs, ours, strict=True):
        for part in ("weight", "bias"):
            out[f"stages.{stage}.{pos}.{part}"] = vgg[f"{idx}.{part}"]
    for s in range(len(_VGG16_CONVS)):
        out[f"lins.{s}.weight"] = lpips_lins[f"lin{s}.model.1.weight"]
    return out
