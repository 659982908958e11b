"""The image-prior bars of issue 13 on Fashion-MNIST: bits per image, samples, classifier FD.

    python bench/prior_image_report.py classifier --data FMNIST_DIR -o runs/fmnist_prior/clf
    python bench/prior_image_report.py report --data FMNIST_DIR --tokens TOKENS \\
        --ar AR_EXPORT --maskgit MASKGIT_EXPORT --classifier runs/.../classifier.safetensors \\
        --model fmnist -o runs/fmnist_prior/report

``classifier`` trains the small CNN of :mod:`audiotok.eval.classifier_fd` on the train split
and reports its test accuracy. ``report`` measures, on the test split:

- bits per image of the test codes under the AR prior (with the true class, and with the
  null class), against a unigram fit on the train codes and the uniform 49 log2 V;
- per-class sample grids (one row per class) of the AR and MaskGIT samplers, with the wall
  time of each sampler for the same number of images;
- the **classifier Fréchet distance** (not FID) between the features of all test images and
  those of: other test images (the floor at this sample count), reconstructions, AR samples,
  MaskGIT samples, and shuffled-code samples (each test image's codes permuted across its
  positions, then decoded): the same number of images in each row, classes balanced.

Writes ``report.json`` and the grids (one row per class) into ``-o``.

``vqvae2`` does the same for a VQ-VAE-2 sampled with its two priors (a top prior, then a
bottom prior conditioned on the top grid): bits per test image of each level and their sum
against the uniform bound (and the bottom's bits given another image's top grid: what the
conditioning is worth), per-class grids, sampling wall time, and the classifier FD of
reconstructions, two-level samples and shuffled-code samples (images cropped to 28 x 28)::

    python bench/prior_image_report.py vqvae2 --data FMNIST_DIR --tokens TOKENS_TEST \
        --fit TOKENS_TRAIN --top TOP_EXPORT --bottom BOTTOM_EXPORT --model VQVAE2_EXPORT \
        --classifier runs/.../classifier.safetensors -o runs/vqvae2_prior/report
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from audiotok.eval.classifier_fd import (
    accuracy,
    features,
    frechet_distance,
    load_classifier,
    save_classifier,
    train_classifier,
)


def _split(data: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    from audiotok.data.images import idx_images

    src = idx_images(data / f"{name}-images-idx3-ubyte.gz")
    x = torch.from_numpy(src.images.transpose(0, 3, 1, 2).copy()).float() / 127.5 - 1.0
    return x, torch.tensor(src.labels)


def cmd_classifier(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    x, y = _split(args.data, "train")
    xt, yt = _split(args.data, "t10k")
    start = time.perf_counter()
    model = train_classifier(x, y, steps=args.steps, seed=0)
    seconds = time.perf_counter() - start
    acc = accuracy(model, xt, yt)
    out = Path(args.out)
    save_classifier(model, out / "classifier.safetensors")
    info = {"test_accuracy": acc, "train_seconds": seconds, "steps": args.steps}
    (out / "classifier.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


def _balanced(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(int(labels.max()) + 1):
        idx = (labels == c).nonzero()[:, 0]
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    return torch.cat(picks)


def _sample(prior, sampler: str, per_class: int, cfg: float, steps: int, seed: int):
    from audiotok.image_generation import sample_image_codes

    out, start = [], time.perf_counter()
    for c in range(prior.config.num_classes):
        out.append(
            sample_image_codes(
                prior, per_class, class_label=c, cfg_scale=cfg, sampler=sampler, steps=steps,
                seed=seed + c,
            )
        )  # fmt: skip
    return torch.cat(out), time.perf_counter() - start


def _finish(report: dict, clf, ref, rows: dict, per_class: int, out: Path) -> None:
    """Classifier FD of every row against the test features, sample accuracy, then write."""
    report["classifier_fd"] = {
        name: frechet_distance(ref, features(clf, imgs)) for name, imgs in rows.items()
    }
    report["classifier_fd_images_per_row"] = per_class * 10
    report["classifier_accuracy_on_samples"] = {
        name: accuracy(clf, imgs, torch.arange(10).repeat_interleave(per_class))
        for name, imgs in rows.items()
        if "samples," in name
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def cmd_report(args: argparse.Namespace) -> None:
    from audiotok.data.shards import TokenShards
    from audiotok.hub import load
    from audiotok.image_generation import image_grid, score_image_prior
    from audiotok.image_io import write_image
    from audiotok.prior import load_prior

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load(args.model)
    ar, mg = load_prior(args.ar), load_prior(args.maskgit)
    h, w = ar.config.latent_shape
    report: dict = {}

    # -- bits per image on the test codes ------------------------------------------------
    test = TokenShards(Path(args.tokens) / "fmnist_test")
    train = TokenShards(Path(args.tokens) / "fmnist_train")

    def stack(s: TokenShards) -> torch.Tensor:
        return torch.from_numpy(np.stack([s.codes(i) for i in range(len(s))]).astype(np.int64))

    codes = stack(test)
    labels = torch.tensor([r["label"] for r in test.files])
    report.update(score_image_prior(ar, codes, labels, fit=stack(train)))
    print(json.dumps(report), flush=True)

    # -- samples: grids and wall time -----------------------------------------------------
    grid_n = args.grid_per_class
    timings = {}
    for sampler, prior in (("ar", ar), ("maskgit", mg)):
        for cfg in args.cfgs:
            g, secs = _sample(prior, sampler, grid_n, cfg, args.steps, seed=1000)
            images = tok.decode(g)
            name = f"samples_{sampler}_cfg{cfg:g}.png"
            write_image(image_grid(images, ncols=grid_n), out / name, force=True)
            timings[f"{sampler}_cfg{cfg:g}"] = {"images": len(g), "seconds": secs}
    report["sampling_wall_time"] = timings
    print(json.dumps(timings), flush=True)

    # -- classifier Fréchet distance --------------------------------------------------------
    clf = load_classifier(args.classifier)
    x_test, y_test = _split(args.data, "t10k")
    ref = features(clf, x_test)
    per_class = args.fd_per_class
    pick = _balanced(y_test, per_class, seed=1)
    other = _balanced(y_test, per_class, seed=2)
    gen = torch.Generator().manual_seed(3)
    shuffled = codes[pick].clone().flatten(2)  # (N, K, H' W')
    for i in range(len(shuffled)):
        shuffled[i] = shuffled[i][:, torch.randperm(h * w, generator=gen)]
    rows = {
        "test images (other draw)": x_test[other],
        "reconstructions": tok.decode(codes[pick].view(-1, 1, h, w)),
        "shuffled-code samples": tok.decode(shuffled.view(-1, 1, h, w)),
    }
    fd_time = {}
    for sampler, prior in (("ar", ar), ("maskgit", mg)):
        for cfg in args.cfgs:
            g, secs = _sample(prior, sampler, per_class, cfg, args.steps, seed=0)
            rows[f"{sampler} samples, cfg {cfg:g}"] = tok.decode(g)
            fd_time[f"{sampler}_cfg{cfg:g}"] = {"images": len(g), "seconds": secs}
    report["fd_sampling_wall_time"] = fd_time
    _finish(report, clf, ref, rows, per_class, out)


def cmd_vqvae2(args: argparse.Namespace) -> None:
    from audiotok.data.shards import TokenShards
    from audiotok.hub import load
    from audiotok.image_generation import image_grid, sample_two_level_codes, score_image_prior
    from audiotok.image_io import write_image
    from audiotok.prior import load_prior

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load(str(args.model))
    top, bottom = load_prior(args.top), load_prior(args.bottom)

    def stack(s: TokenShards) -> torch.Tensor:
        return torch.from_numpy(np.stack([s.codes(i) for i in range(len(s))]).astype(np.int64))

    test = TokenShards(args.tokens)
    codes, fit = stack(test), stack(TokenShards(args.fit))
    labels = torch.tensor([r["label"] for r in test.files])
    report: dict = {"top": score_image_prior(top, codes, labels, fit=fit)}
    report["bottom"] = score_image_prior(bottom, codes, labels, fit=fit)
    # does the bottom prior use the top grid? the same bottom codes given another image's
    kt = top.config.num_codebooks
    other_top = codes.clone()
    other_top[:, :kt] = codes.roll(1, dims=0)[:, :kt]
    report["bottom_given_another_images_top"] = score_image_prior(bottom, other_top, labels)
    report["total"] = {
        key: report["top"][key] + report["bottom"][key]
        for key in (
            "bits_per_image",
            "bits_per_image_null_class",
            "unigram_bits_per_image",
            "uniform_bits_per_image",
        )
    }
    print(json.dumps(report), flush=True)

    def sample(per_class: int, cfg: float, seed: int) -> tuple[torch.Tensor, float]:
        got, start = [], time.perf_counter()
        for c in range(10):
            got.append(
                sample_two_level_codes(
                    top, bottom, per_class, class_label=c, cfg_scale=cfg, seed=seed + c
                )
            )
        return torch.cat(got), time.perf_counter() - start

    size = (28, 28)
    timings = {}
    for cfg in args.cfgs:
        g, secs = sample(args.grid_per_class, cfg, seed=1000)
        grid = image_grid(tok.decode(g, size=size), ncols=args.grid_per_class)
        write_image(grid, out / f"samples_vqvae2_cfg{cfg:g}.png", force=True)
        timings[f"cfg{cfg:g}"] = {"images": len(g), "seconds": secs}
    report["sampling_wall_time"] = timings

    clf = load_classifier(args.classifier)
    x_test, y_test = _split(args.data, "t10k")
    ref = features(clf, x_test)
    per_class = args.fd_per_class
    pick = _balanced(y_test, per_class, seed=1)
    other = _balanced(y_test, per_class, seed=2)
    by_key = {r["id"]: i for i, r in enumerate(test.files)}
    rows_of = torch.tensor([by_key[f"t10k-images-idx3-ubyte.gz:{int(i)}"] for i in pick])
    picked = codes[rows_of]  # (N, K, h w) packed rows of the picked test images
    k, hw = picked.shape[1:]
    side = int(round(hw**0.5))
    gen = torch.Generator().manual_seed(3)
    shuffled = picked.clone()
    for i in range(len(shuffled)):  # each level's codes permuted across the top grid
        shuffled[i] = shuffled[i][:, torch.randperm(hw, generator=gen)]
    rows = {
        "test images (other draw)": x_test[other],
        "reconstructions": tok.decode(picked.view(-1, k, side, side), size=size),
        "shuffled-code samples": tok.decode(shuffled.view(-1, k, side, side), size=size),
    }
    for cfg in args.cfgs:
        g, _ = sample(per_class, cfg, seed=0)
        rows[f"two-level samples, cfg {cfg:g}"] = tok.decode(g, size=size)
    _finish(report, clf, ref, rows, per_class, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("classifier")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--steps", type=int, default=1500)
    c.add_argument("-o", "--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--tokens", type=Path, required=True)
    r.add_argument("--ar", type=Path, required=True)
    r.add_argument("--maskgit", type=Path, required=True)
    r.add_argument("--classifier", type=Path, required=True)
    r.add_argument("--model", default="fmnist")
    r.add_argument("--steps", type=int, default=8)
    r.add_argument("--cfgs", type=float, nargs="+", default=[1.0, 2.0])
    r.add_argument("--grid-per-class", type=int, default=10)
    r.add_argument("--fd-per-class", type=int, default=100)
    r.add_argument("-o", "--out", type=Path, required=True)
    v = sub.add_parser("vqvae2")
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--tokens", type=Path, required=True, help="test token folder")
    v.add_argument("--fit", type=Path, required=True, help="train token folder (unigram fit)")
    v.add_argument("--top", type=Path, required=True)
    v.add_argument("--bottom", type=Path, required=True)
    v.add_argument("--model", type=Path, required=True)
    v.add_argument("--classifier", type=Path, required=True)
    v.add_argument("--cfgs", type=float, nargs="+", default=[1.0, 2.0])
    v.add_argument("--grid-per-class", type=int, default=10)
    v.add_argument("--fd-per-class", type=int, default=100)
    v.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    {"classifier": cmd_classifier, "report": cmd_report, "vqvae2": cmd_vqvae2}[args.cmd](args)


if __name__ == "__main__":
    main()
