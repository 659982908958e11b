"""Colour photo crops for the VQGAN recipe (recipes/image_vqgan_photos.yaml), offline.

Sources (all allowed by the project's data rules, none downloaded at run time):

* the photos bundled in the scikit-image wheel (``skimage/data``: astronaut, chelsea,
  coffee, rocket, motorcycle, ...; grey and synthetic ones are dropped by a colour test);
* scikit-learn's two sample photos (``sklearn/datasets/images``: china, flower);
* Debian's ``gnome-backgrounds`` wallpapers (``usr/share/backgrounds/gnome/*.webp``).

Steps: each image is resized (Lanczos) so that its shorter side is ``--short-side``
pixels; the images are split **by source file** (``--test-fraction`` of the files, at least
two, chosen by a hash of the file name, so no crop of a test photo is ever trained on);
variants of one picture (light/dark wallpapers, a stereo pair) stay together;
then ``train.npy`` holds ``--train-crops`` random ``--train-size`` crops per training
photo, which the recipe crops again at random to its ``image_size`` (with flips), and
``test.npy`` the non-overlapping ``--test-size`` tiles of the test photos, read in order by
validation and evaluation. Both are ``(N, H, W, 3)`` uint8; ``SPLIT.txt`` names the files.

Usage::

    pip download --no-deps scikit-image -d /tmp/w          # the wheel; not installed
    python -c "import zipfile,glob; zipfile.ZipFile(glob.glob('/tmp/w/*.whl')[0]).extractall(
        '$HOME/.cache/audiotok/skimage_wheel', [n for n in zipfile.ZipFile(glob.glob(
        '/tmp/w/*.whl')[0]).namelist() if n.startswith('skimage/data/')])"
    apt-get download gnome-backgrounds && dpkg-deb -x gnome-backgrounds_*.deb \\
        ~/.cache/audiotok/wallpapers
    python recipes/data/prepare_colour_crops.py \\
        ~/.cache/audiotok/skimage_wheel/skimage/data \\
        ~/.cache/audiotok/wallpapers/usr/share/backgrounds/gnome \\
        --sklearn --out ~/.cache/audiotok/colour_crops
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import numpy as np
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def is_colour(a: np.ndarray, min_spread: float = 8.0) -> bool:
    """True for an ``(H, W, 3)`` uint8 image whose channels differ (not grey stored as RGB)."""
    f = a.astype(np.float32)
    return float(np.abs(f - f.mean(axis=2, keepdims=True)).mean()) >= min_spread


def load_resized(path: Path, short_side: int) -> np.ndarray | None:
    """The image as ``(H, W, 3)`` uint8 with its shorter side ``short_side``, or None."""
    with Image.open(path) as img:
        if img.mode not in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
            return None
        img = img.convert("RGB")
        scale = short_side / min(img.size)
        size = (
            max(short_side, round(img.width * scale)),
            max(short_side, round(img.height * scale)),
        )
        a = np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)
    return a if is_colour(a) else None


def group_of(name: str) -> str:
    """Variants of one picture share a group (wallpapers' light/dark ``-l``/``-d``, the
    stereo pair ``motorcycle_left``/``_right``), so they land on the same side of the split."""
    stem = name.rsplit(".", 1)[0]
    return re.sub(r"(-[ld]|_left|_right)$", "", stem)


def is_test(name: str, fraction: float) -> bool:
    """Split by a hash of the file's group alone (stable when files are added)."""
    key = group_of(name).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0**64 < fraction


def tiles(a: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size`` x ``size`` tiles of ``a``, row by row: ``(N, size, size, 3)``."""
    h, w = (a.shape[0] // size) * size, (a.shape[1] // size) * size
    t = a[:h, :w].reshape(h // size, size, w // size, size, 3).transpose(0, 2, 1, 3, 4)
    return t.reshape(-1, size, size, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="folders of photos")
    p.add_argument("--sklearn", action="store_true", help="add scikit-learn's sample photos")
    p.add_argument("--out", type=Path, default=Path.home() / ".cache/audiotok/colour_crops")
    p.add_argument("--short-side", type=int, default=192)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--train-size", type=int, default=48)
    p.add_argument("--train-crops", type=int, default=400)
    p.add_argument("--test-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    folders = list(args.folders)
    if args.sklearn:
        import sklearn.datasets

        folders.append(Path(sklearn.datasets.__file__).parent / "images")
    files = sorted(f for d in folders for f in d.iterdir() if f.suffix.lower() in EXTENSIONS)
    photos = {}
    for f in files:
        a = load_resized(f, args.short_side)
        if a is not None:
            photos[f"{f.parent.name}/{f.name}"] = a
    names = sorted(photos)
    test = [n for n in names if is_test(n, args.test_fraction)]
    for n in names:  # at least two test photos
        if len(test) >= 2:
            break
        if n not in test:
            test += [m for m in names if group_of(m) == group_of(n)]
    train = [n for n in names if n not in test]
    rng = np.random.default_rng(args.seed)
    s = args.train_size
    crops = []
    for n in train:
        a = photos[n]
        for _ in range(args.train_crops):
            i = int(rng.integers(0, a.shape[0] - s + 1))
            j = int(rng.integers(0, a.shape[1] - s + 1))
            crops.append(a[i : i + s, j : j + s])
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "train.npy", np.stack(crops))
    test_tiles = np.concatenate([tiles(photos[n], args.test_size) for n in sorted(test)])
    np.save(args.out / "test.npy", test_tiles)
    lines = [f"train {n} {photos[n].shape[1]}x{photos[n].shape[0]}" for n in train]
    lines += [f"test {n} {photos[n].shape[1]}x{photos[n].shape[0]}" for n in sorted(test)]
    lines += [f"train.npy {len(crops)} crops of {s}px; test.npy {len(test_tiles)} tiles"]
    (args.out / "SPLIT.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
