"""Token files: plain-numpy readability, the metadata trailer, atomic writes, bad files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from audiotok.codes import MAGIC, CodesMeta, codes_dtype, read_codes, write_codes
from audiotok.errors import UserError


def _meta(
    k: int = 4, size: int = 1024, model_id: str = "abc123def456", length: int = 12345
) -> CodesMeta:
    return CodesMeta(
        model_id=model_id,
        family="soundstream",
        audiotok_version="0.1.0",
        sample_rate=24000,
        frame_rate=75.0,
        hop_length=320,
        channels=1,
        num_codebooks=k,
        codebook_size=size,
        length=length,
        original_sample_rate=44100,
        original_length=round(length * 44100 / 24000) - 3,
        original_channels=2,
    )


def _codes(k: int = 4, t: int = 39, size: int = 1024) -> np.ndarray:
    return np.random.default_rng(0).integers(0, size, (k, t))


@pytest.mark.parametrize(
    ("size", "dtype"), [(2, "u1"), (256, "u1"), (257, "u2"), (65536, "u2"), (65537, "u4")]
)
def test_smallest_dtype(size: int, dtype: str) -> None:
    assert codes_dtype(size) == np.dtype(dtype)


def test_npy_with_trailer_loads_with_plain_numpy(tmp_path: Path) -> None:
    codes, meta = _codes(), _meta()
    path = write_codes(tmp_path / "song.npy", codes, meta)
    plain = np.load(path, allow_pickle=False)
    assert plain.dtype == np.uint16 and np.array_equal(plain, codes)
    mapped = np.load(path, allow_pickle=False, mmap_mode="r")
    assert np.array_equal(mapped, codes)
    assert path.read_bytes().endswith(MAGIC)
    got, got_meta = read_codes(path)
    assert np.array_equal(got, codes) and got_meta == meta


def test_bare_npy_has_no_meta(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", _codes(size=300).astype(np.int64))
    codes, meta = read_codes(tmp_path / "x.npy")
    assert meta is None and codes.shape == (4, 39)
    write_codes(tmp_path / "y.npy", codes)  # no metadata: no trailer, smallest dtype
    y = np.load(tmp_path / "y.npy", allow_pickle=False)
    assert y.dtype == np.uint16 and np.array_equal(y, codes)
    assert not (tmp_path / "y.npy").read_bytes().endswith(MAGIC)


def test_npz_round_trip_without_pickle(tmp_path: Path) -> None:
    codes, meta = _codes(size=200), _meta(size=200)
    path = write_codes(tmp_path / "song.npz", codes, meta)
    with np.load(path, allow_pickle=False) as z:
        assert z["codes"].dtype == np.uint8 and np.array_equal(z["codes"], codes)
        assert '"model_id": "abc123def456"' in str(z["meta"])
    got, got_meta = read_codes(path)
    assert np.array_equal(got, codes) and got_meta == meta


def test_never_overwrites_without_force_and_leaves_no_temp(tmp_path: Path) -> None:
    path = write_codes(tmp_path / "a.npy", _codes(), _meta())
    with pytest.raises(UserError, match=r"a\.npy.*--force"):
        write_codes(path, _codes(t=5), _meta(length=1600))
    assert read_codes(path)[0].shape == (4, 39)
    write_codes(path, _codes(t=5), _meta(length=1600), force=True)
    assert read_codes(path)[0].shape == (4, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


def _write_raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bad_files(tmp_path: Path) -> None:
    good = write_codes(tmp_path / "good.npy", _codes(), _meta()).read_bytes()
    cases = {
        "missing.npy": (None, "not found"),
        "empty.npy": (b"", "empty"),
        "junk.npy": (b"hello world, not numpy", "not a valid"),
        "truncated.npy": (good[:200], "truncated"),
        "trailer.npy": (good + b"xyz", "corrupt"),
        "badmeta.npy": (good[:-20] + b"{" + good[-19:], "corrupt"),
        "junk.npz": (b"PK\x03\x04garbage", "not a valid"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(UserError, match=message) as info:
            read_codes(path)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 5), np.float32), "integer"),
        (-np.ones((2, 5), np.int64), "negative"),
        (np.zeros(5, np.int64), "shape"),
        (np.zeros((1, 2, 5), np.int64), "shape"),
        (np.zeros((2, 0), np.int64), "empty"),
        (np.full((2, 5), 1024, np.int64), "out of range"),
        (np.zeros((9, 5), np.int64), "only 8"),
    ],
)
def test_bad_codes(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "c.npy", array)
    model = SimpleNamespace(model_id="m1", num_codebooks=8, codebook_size=1024)
    with pytest.raises(UserError, match=message):
        read_codes(tmp_path / "c.npy", model)


def test_codes_from_another_model_are_refused(tmp_path: Path) -> None:
    path = write_codes(tmp_path / "c.npy", _codes(), _meta(model_id="aaaaaaaaaaaa"))
    other = SimpleNamespace(model_id="bbbbbbbbbbbb", num_codebooks=8, codebook_size=1024)
    with pytest.raises(UserError, match="aaaaaaaaaaaa.*bbbbbbbbbbbb"):
        read_codes(path, other)
    same = SimpleNamespace(model_id="aaaaaaaaaaaa", num_codebooks=8, codebook_size=1024)
    assert read_codes(path, same)[0].shape == (4, 39)


def test_metadata_must_match_codes(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="metadata says 3"):
        write_codes(tmp_path / "c.npy", _codes(k=4), _meta(k=3))
    with pytest.raises(UserError, match="out of range"):
        write_codes(tmp_path / "c.npy", _codes(size=1024), _meta(size=16))
    with pytest.raises(UserError, match="need metadata"):
        write_codes(tmp_path / "c.npz", _codes())
    with pytest.raises(UserError, match=r"\.npy or \.npz"):
        write_codes(tmp_path / "c.txt", _codes(), _meta())
    assert not list(tmp_path.iterdir())


# -- the one validator of codes (audiotok.quantize.base.check_codes) -------------------------

#: bad codes with K = 3 codebooks of 16 entries: how to make them, and the one message
BAD_CODES = {
    "float": (
        lambda shape: np.zeros(shape, np.float32),
        "expected integer codes, got dtype float32",
    ),
    "k": (
        lambda shape: np.zeros((4, *shape[1:]), np.int64),
        r"num_codebooks must be an int in \[1, 3\], got 4 \(this \w+ has only 3\)",
    ),
    "high": (
        lambda shape: np.full(shape, 16),
        "codes out of range: expected 0 <= code < 16, got min 16 and max 16",
    ),
    "negative": (
        lambda shape: np.full(shape, -1),
        # a bare token file knows no codebook_size until the model is checked
        r"codes out of range: expected 0 <= code( < 16)?, got min -1 \(negative\) and max -1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CODES))
def test_one_message_for_bad_codes_everywhere(tmp_path: Path, case: str) -> None:
    # the audio codec, its quantizer, an image codec and the token-file reader share one
    # validator, so the same mistake reads the same in all of them
    import torch
    from test_hub import RVQ, tiny_soundstream  # K = 3, codebook_size 16

    from audiotok.image import ImageVQVAE, ImageVQVAEConfig

    make, message = BAD_CODES[case]
    codec = tiny_soundstream().eval()
    config = ImageVQVAEConfig(
        hidden=8, channel_mult=(1, 2), num_res_blocks=1, res_hidden=4, latent_dim=8, quantizer=RVQ
    )
    image = ImageVQVAE(config).eval()
    calls = [
        lambda: codec.decode(torch.from_numpy(make((3, 4))[None])),  # (B, k, T')
        lambda: image.decode(torch.from_numpy(make((3, 2, 2))[None])),  # (B, k, H', W')
        lambda: codec.quantizer.decode(torch.from_numpy(make((3, 4)).T[None].copy())),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()
    np.save(tmp_path / "c.npy", make((3, 4)))
    model = SimpleNamespace(model_id="m1", num_codebooks=3, codebook_size=16)
    with pytest.raises(UserError, match=f"c.npy: {message}"):
        read_codes(tmp_path / "c.npy", model)


def test_bad_code_shapes_name_the_layout() -> None:
    import torch
    from test_hub import tiny_soundstream

    codec = tiny_soundstream().eval()
    with pytest.raises(
        ValueError, match=r"^expected codes of shape \(B, k, T'\), got shape \(3, 4\)$"
    ):
        codec.decode(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(
        ValueError,
        match=r"^codes are empty: expected shape \(B, k, T'\) with k, T' >= 1, got shape \(1, 3, 0\)$",
    ):
        codec.decode(torch.zeros(1, 3, 0, dtype=torch.long))


def test_check_codes_layouts_and_types() -> None:
    import torch

    from audiotok.quantize.base import check_codes, check_num_codebooks

    ok = torch.zeros(0, 5, 2, dtype=torch.int32)  # an empty batch is allowed
    check_codes(ok, layout=("B", "...", "k"), codebook_size=4)
    check_codes(torch.zeros(2, dtype=torch.long), layout=("B", "..."), codebook_size=1)
    with pytest.raises(ValueError, match=r"shape \(B, \.\.\., k\), got shape \(2,\)"):
        check_codes(torch.zeros(2, dtype=torch.long), layout=("B", "...", "k"), codebook_size=4)
    with pytest.raises(ValueError, match="expected codes as a torch.Tensor, got list"):
        check_codes([[0]], layout=("B", "k"), codebook_size=4)
    with pytest.raises(ValueError, match="numpy.ndarray, got Tensor"):
        check_codes(ok, layout=("B", "...", "k"), codebook_size=4, types=(np.ndarray,))
    with pytest.raises(ValueError, match="^expected integer codes, got dtype bool$"):
        check_codes(ok.bool(), layout=("B", "...", "k"), codebook_size=4)
    with pytest.raises(ValueError, match=r"expected 0 <= code, got min -2 \(negative\)"):
        check_codes(
            np.full((2, 2), -2), layout=("K", "T'"), codebook_size=None, types=(np.ndarray,)
        )
    check_codes(
        np.full((2, 2), 10**9, np.uint32),
        layout=("K", "T'"),
        codebook_size=None,
        types=(np.ndarray,),
    )
    count = lambda k: check_num_codebooks(k, total=4, partial=False, owner="model")  # noqa: E731
    with pytest.raises(ValueError, match="this model needs all 4 codebooks, got num_codebooks=2"):
        check_codes(
            np.zeros((2, 3), np.uint8),
            layout=("K", "T'"),
            codebook_size=4,
            num_codebooks=count,
            types=(np.ndarray,),
        )
    for bad in (0, 5, 1.0, True, None):
        with pytest.raises(ValueError, match=r"num_codebooks must be an int in \[1, 4\]"):
            check_num_codebooks(bad, total=4, partial=True, owner="model")
    assert check_num_codebooks(np.int64(2), total=4, partial=True, owner="model") == 2
