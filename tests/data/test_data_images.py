"""Image readers on tiny fixtures: folders, lists, IDX, CIFAR (binary and pickle), arrays."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from audiotok.data.images import (
    ArrayImages,
    ImageDataset,
    array_images,
    cifar_images,
    idx_images,
    image_folder,
    image_list,
    image_manifest,
    open_image_source,
    read_cifar_binary,
    read_cifar_pickle,
    read_idx,
    restricted_unpickle,
    split_of,
)
from audiotok.errors import UserError


def _png(path: Path, value: int, size: tuple[int, int] = (6, 5), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=None).convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    _png(root / "cat" / "a.PNG", 10)
    _png(root / "cat" / "deep" / "b.jpeg", 20)
    _png(root / "dog" / "c.JPG", 30)
    _png(root / "dog" / "d.webp", 40)
    _png(root / "dog" / "e.Bmp", 50, mode="L")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    _png(root / ".hidden" / "x.png", 0)
    return root


def test_folder_with_class_subfolders_any_case(folder: Path) -> None:
    src = image_folder(folder, class_subfolders=True)
    assert src.classes == ["cat", "dog"] and src.labels == [0, 0, 1, 1, 1]
    assert [Path(k).name for k in src.keys] == ["a.PNG", "b.jpeg", "c.JPG", "d.webp", "e.Bmp"]
    assert src.channels == 3 and src.load(4).shape == (5, 6, 3)  # grey promoted to RGB
    assert image_folder(folder).labels is None


def test_bad_files_are_reported_and_skipped(folder: Path) -> None:
    (folder / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    good = (folder / "cat" / "a.PNG").read_bytes()
    (folder / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(RuntimeWarning) as record:
        src = image_folder(folder)
    lines = [str(w.message) for w in record]
    assert any("broken.png: skipped" in m for m in lines)
    assert any("truncated.png: skipped" in m for m in lines)
    assert any("2 of 7 images skipped, 5 kept" in m for m in lines)
    assert len(src) == 5


def test_nothing_left_fails(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"junk")
    with pytest.warns(RuntimeWarning), pytest.raises(UserError, match="no readable images"):
        image_folder(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no image files"):
        image_folder(tmp_path / "empty")


def test_text_list_and_jsonl_manifest(folder: Path) -> None:
    lst = folder / "list.txt"
    lst.write_text("# comment\ncat/a.PNG\t3\n\ndog/c.JPG\t1\n")
    src = image_list(lst)
    assert src.labels == [3, 1] and src.load(0)[0, 0, 0] == 10
    man = folder / "m.jsonl"
    rows = [{"path": "dog/d.webp", "label": 2}, {"path": str(folder / "cat" / "a.PNG"), "label": 0}]
    man.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert image_manifest(man).labels == [2, 0]
    outside = _png(folder.parent / "elsewhere" / "z.png", 60)
    lst.write_text(f"{outside}\t5\ncat/a.PNG\t3\n")
    assert image_list(lst).keys == [outside.as_posix(), "cat/a.PNG"]
    man.write_text('{"path": "cat/a.PNG"}\n{"path": "dog/c.JPG", "label": 1}\n')
    with pytest.raises(UserError, match="every entry has a label or none"):
        image_manifest(man)
    man.write_text('{"path": "cat/a.PNG", "label": "x"}\n')
    with pytest.raises(UserError, match="m.jsonl:1: label must be an integer"):
        image_manifest(man)


def _idx(path: Path, array: np.ndarray, code: int = 0x08, dims: list[int] | None = None) -> Path:
    dims = list(array.shape) if dims is None else dims
    data = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_images_and_sibling_labels(tmp_path: Path, suffix: str) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    _idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.array([7, 8, 9], dtype=np.uint8))
    src = idx_images(_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images))
    assert len(src) == 3 and src.labels == [7, 8, 9]
    assert np.array_equal(src.load(2)[..., 0], images[2])
    big_endian = np.array([[1, -2], [300, 4]], dtype=np.int16)
    assert np.array_equal(read_idx(_idx(tmp_path / "s-ubyte", big_endian, code=0x0B)), big_endian)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_header_is_checked_before_allocating(tmp_path: Path, suffix: str) -> None:
    few = np.zeros((3, 4, 4), dtype=np.uint8)
    with pytest.raises(UserError, match=r"header says \[100, 4, 4\]"):
        read_idx(_idx(tmp_path / f"a-ubyte{suffix}", few, dims=[100, 4, 4]))
    with pytest.raises(UserError, match="over the"):  # ~4.6e18 bytes claimed: no MemoryError
        read_idx(_idx(tmp_path / f"b-ubyte{suffix}", few, dims=[2**31, 2**31, 2]))
    (tmp_path / "c-ubyte").write_bytes(b"\x00\x00\x07\x01abcd")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "c-ubyte")
    (tmp_path / "d-ubyte.gz").write_bytes(b"not gzip at all, not at all")
    with pytest.raises(UserError):
        read_idx(tmp_path / "d-ubyte.gz")


def _cifar_records(n: int, label_bytes: int) -> tuple[bytes, np.ndarray]:
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(n, -1)  # R plane, G plane, B plane
    labels = np.arange(n, dtype=np.uint8).reshape(n, 1).repeat(label_bytes, 1)
    labels[:, 0] = labels[:, 0] % 5  # coarse labels differ from fine ones in CIFAR-100
    return np.concatenate([labels, planes], axis=1).tobytes(), images


def test_cifar10_and_cifar100_binary(tmp_path: Path) -> None:
    raw, images = _cifar_records(3, 1)
    (tmp_path / "data_batch_1.bin").write_bytes(raw)
    got, labels = read_cifar_binary(tmp_path / "data_batch_1.bin")
    assert np.array_equal(got, images) and labels.tolist() == [0, 1, 2]
    raw100, images100 = _cifar_records(4, 2)
    (tmp_path / "train.bin").write_bytes(raw100)
    got, fine = read_cifar_binary(tmp_path / "train.bin")
    assert np.array_equal(got, images100) and fine.tolist() == [0, 1, 2, 3]
    assert read_cifar_binary(tmp_path / "train.bin", coarse=True)[1].tolist() == [0, 1, 2, 3]
    (tmp_path / "data_batch_2.bin").write_bytes(raw[:-5])
    with pytest.raises(UserError, match="whole number of 3073-byte records"):
        read_cifar_binary(tmp_path / "data_batch_2.bin")


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_python_batch(tmp_path: Path, protocol: int) -> None:
    images = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [3, 1, 4, 1, 5],
        b"data": images.transpose(0, 3, 1, 2).reshape(5, -1),
        b"filenames": [b"a.png"] * 5,
    }
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=protocol))
    got, labels = read_cifar_pickle(tmp_path / "data_batch_1")
    assert np.array_equal(got, images) and labels.tolist() == [3, 1, 4, 1, 5]
    src = cifar_images(tmp_path)
    assert isinstance(src, ArrayImages) and len(src) == 5 and src.labels == [3, 1, 4, 1, 5]


def test_cifar_pickle_with_numpy1_module_names(tmp_path: Path) -> None:
    # CIFAR's own pickles (Python 2, numpy 1) name numpy.core.multiarray._reconstruct
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    raw = pickle.dumps({b"data": data, b"fine_labels": [99, 0]}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "train").write_bytes(raw)
    images, labels = read_cifar_pickle(tmp_path / "train")
    assert labels.tolist() == [99, 0] and images[1, 0, 0, 0] == data[1, 0]


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.target}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Evil(marker), "labels": [0]}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        restricted_unpickle(payload)
    (tmp_path / "data_batch_1").write_bytes(payload)
    with pytest.raises(UserError, match="refusing"):
        read_cifar_pickle(tmp_path / "data_batch_1")
    evil_eval = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_unpickle(evil_eval)
    assert not marker.exists()
    assert restricted_unpickle(pickle.dumps({"a": [1, (2, b"x")]})) == {"a": [1, (2, b"x")]}


def test_bad_cifar_batch_is_skipped_among_good_ones(tmp_path: Path) -> None:
    raw, _ = _cifar_records(2, 1)
    (tmp_path / "data_batch_1.bin").write_bytes(raw)
    (tmp_path / "data_batch_2.bin").write_bytes(raw[:100])
    (tmp_path / "test_batch.bin").write_bytes(raw)
    with pytest.warns(RuntimeWarning) as record:
        src = cifar_images(tmp_path)
    lines = [str(w.message) for w in record]
    assert any("data_batch_2.bin: skipped" in m for m in lines)
    assert "CIFAR batches: 1 of 2 files skipped, 1 kept" in lines
    assert len(src) == 2
    assert len(cifar_images(tmp_path, test=True)) == 2


def test_npy_and_npz_arrays(tmp_path: Path) -> None:
    grey = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.save(tmp_path / "g.npy", grey)
    src = array_images(tmp_path / "g.npy")
    assert src.channels == 1 and np.array_equal(src.load(1)[..., 0], grey[1])
    chw = np.random.default_rng(2).uniform(0, 1, (3, 3, 4, 5)).astype(np.float32)
    np.savez(tmp_path / "c.npz", images=chw, labels=np.array([0, 2, 1]))
    src = array_images(tmp_path / "c.npz")
    assert src.load(0).shape == (4, 5, 3) and src.labels == [0, 2, 1]
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="cannot read array file"):
        array_images(tmp_path / "o.npy")
    np.save(tmp_path / "f.npy", chw * 3)
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        array_images(tmp_path / "f.npy")


def test_dataset_range_channels_size_and_labels(folder: Path) -> None:
    ds = ImageDataset(image_folder(folder, class_subfolders=True))
    x, y = ds[0]
    assert x.shape == (3, 5, 6) and x.dtype == torch.float32 and y == 0
    torch.testing.assert_close(x, torch.full_like(x, 10 / 127.5 - 1))
    grey = ImageDataset(folder, channels=1, size=4)
    x, y = grey[2]
    assert x.shape == (1, 4, 4) and y == -1 and not grey.has_labels
    assert -1.0 <= x.min() and x.max() <= 1.0
    arr = ArrayImages(np.array([[[0, 255]]], dtype=np.uint8))
    x, _ = ImageDataset(arr)[0]
    assert x.flatten().tolist() == [-1.0, 1.0]


def test_deterministic_split_by_key(tmp_path: Path) -> None:
    src = ArrayImages(np.zeros((200, 2, 2), dtype=np.uint8), name="a")
    train = ImageDataset(src, split="train", val_fraction=0.2, seed=1)
    val = ImageDataset(src, split="val", val_fraction=0.2, seed=1)
    assert set(train.indices).isdisjoint(val.indices) and len(train) + len(val) == 200
    assert 20 <= len(val) <= 60
    again = ImageDataset(src, split="val", val_fraction=0.2, seed=1)
    assert again.indices == val.indices
    assert ImageDataset(src, split="val", val_fraction=0.2, seed=2).indices != val.indices
    # a key's split depends on the key only: adding images moves nothing
    assert split_of("cat/a.png", 0.5, seed=3) == split_of("cat/a.png", 0.5, seed=3)
    with pytest.raises(UserError, match="split is empty"):
        ImageDataset(src, split="val", val_fraction=0.0)


def test_open_image_source_picks_the_reader(tmp_path: Path, folder: Path) -> None:
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 3, 3), dtype=np.uint8))
    assert len(open_image_source(tmp_path / "t10k-images-idx3-ubyte.gz")) == 2
    assert open_image_source(folder, class_subfolders=True).classes == ["cat", "dog"]
    assert len(open_image_source(folder / "cat" / "a.PNG")) == 1
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(UserError, match="unknown image data format"):
        open_image_source(tmp_path / "x.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder warns nothing
        image_folder(folder)


def test_header_check_and_a_file_that_vanishes(folder: Path) -> None:
    src = image_folder(folder, check="header")
    assert len(src) == 5
    (folder / "cat" / "a.PNG").unlink()
    with pytest.raises(UserError, match="cannot read image .*a.PNG"):
        src.load(0)
    with pytest.raises(ValueError, match="check must be"):
        image_folder(folder, check="full")


def test_array_dtypes_and_ranges() -> None:
    masks = ArrayImages(np.array([[[True, False]]]))
    assert masks.load(0)[..., 0].tolist() == [[255, 0]]
    wide = ArrayImages(np.array([[[0, 255]]], dtype=np.int32), labels=np.array([4]))
    assert wide.load(0).dtype == np.uint8 and wide.labels == [4]
    with pytest.raises(UserError, match=r"\[0, 255\]"):
        ArrayImages(np.array([[[0, 256]]], dtype=np.int32))
    with pytest.raises(UserError, match="2 integer labels"):
        ArrayImages(np.zeros((2, 2, 2), np.uint8), labels=np.array([0.5, 1.0]))
    with pytest.raises(UserError, match="channels"):
        ArrayImages(np.zeros((2, 5, 6, 7), np.uint8))


def test_random_crops_and_flips_at_native_scale() -> None:
    ramp = np.tile(np.arange(16, dtype=np.uint8) * 10, (12, 1))  # columns 0, 10, ..., 150
    src = ArrayImages(ramp[None])
    torch.manual_seed(0)
    crops = ImageDataset(src, size=(4, 5), crop="random")
    firsts = set()
    for _ in range(20):
        x, _ = crops[0]
        cols = ((x[0, 0] + 1) * 127.5).round().tolist()
        assert x.shape == (1, 4, 5) and np.diff(cols).tolist() == [10] * 4  # not resized
        firsts.add(cols[0])
    assert len(firsts) > 3  # the crop moves
    flips = ImageDataset(src, flip=True)
    seen = {round(float(flips[0][0][0, 0, 0]) * 127.5 + 127.5) for _ in range(20)}
    assert seen == {0, 150}  # the first column, or the last one mirrored
    small = ImageDataset(ArrayImages(np.zeros((1, 2, 3), np.uint8)), size=4, crop="random")
    assert small[0][0].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="crop must be"):
        ImageDataset(src, crop="middle")
