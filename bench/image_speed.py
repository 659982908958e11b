"""Image tokenizer speed: audiotok's ImageVQVAE against vector-quantize-pytorch's VQ.

Both sides are the **same conv autoencoder** (the very same encoder and decoder modules of
one :class:`~audiotok.image.vqvae.ImageVQVAE`); only the quantizer differs: audiotok's EMA
codebook through the model's public ``encode`` / ``decode`` (input checks and padding
included), against ``vector_quantize_pytorch.VectorQuantize`` (same ``codebook_size``, same
dimension, EMA, eval mode) holding a copy of the same codebook, so that both produce the
same codes, which the script checks before timing. Measured in one run, the two sides
taking turns, on Fashion-MNIST test images when ``--data`` points at an IDX file (else
random 28x28 images): images per second of encode (image -> codes) and decode (codes ->
image), at batch 1 and 64, medians of ``--repeats`` after a warm-up, with the ratio
audiotok / peer.

The model is ``--model DIR`` (an exported image VQ-VAE), else the ``model`` section of
``recipes/image_vqvae_fmnist.yaml`` at random init (speed does not depend on the weights).
The peer is benchmark-only: ``pip install -c constraints.txt vector-quantize-pytorch`` (the
``bench`` extra); the package never imports it.

Usage::

    python bench/image_speed.py [--model DIR] [--data t10k-images-idx3-ubyte.gz]
        [--threads 1] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]


def load_model(model: str | None) -> tuple[nn.Module, str]:
    """The ImageVQVAE to measure and a line saying where it came from."""
    from audiotok import hub

    if model is not None:
        return hub.load_pretrained(model).eval(), f"exported model {model}"
    import yaml

    spec = yaml.safe_load((ROOT / "recipes" / "image_vqvae_fmnist.yaml").read_text())["model"]
    cls = hub.MODEL_FAMILIES[spec["family"]]
    torch.manual_seed(0)
    net = cls(cls.config_class.from_dict(spec["config"]))
    net.quantizer.initialized.fill_(True)  # a random codebook, no k-means on first call
    return net.eval(), "image_vqvae_fmnist.yaml config at random init"


class PeerAutoencoder(nn.Module):
    """The codec's own encoder and decoder around ``VectorQuantize``.

    Args:
        codec: an :class:`~audiotok.image.vqvae.ImageVQVAE` with one EMA codebook.
    """

    def __init__(self, codec: nn.Module) -> None:
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.encoder, self.decoder = codec.encoder, codec.decoder
        codebook = codec.quantizer.codebook.detach()  # (K, D)
        self.vq = VectorQuantize(dim=codebook.shape[1], codebook_size=codebook.shape[0], decay=0.99)
        with torch.no_grad():
            self.vq._codebook.embed.copy_(codebook[None])
            self.vq._codebook.initted.fill_(True)

    @torch.no_grad()
    def encode(self, image: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> codes ``(B, 1, H', W')``."""
        latent = self.encoder(image)  # (B, D, H', W')
        _, codes, _ = self.vq(rearrange(latent, "b d h w -> b (h w) d"))
        return rearrange(codes, "b (h w) -> b 1 h w", h=latent.shape[2])

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """codes ``(B, 1, H', W')`` -> ``(B, C, H, W)``."""
        quantized = self.vq.get_output_from_indices(rearrange(codes, "b 1 h w -> b (h w)"))
        h = codes.shape[2]
        return self.decoder(rearrange(quantized, "b (h w) d -> b d h w", h=h))


def load_images(data: str | None, n: int) -> tuple[Tensor, str]:
    """``n`` images ``(n, 1, 28, 28)`` in [-1, 1] and a line saying what they are."""
    if data is not None:
        from audiotok.data.images import ImageDataset

        ds = ImageDataset(data, channels=1, size=28)
        return torch.stack([ds[i][0] for i in range(n)]), f"first {n} images of {data}"
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, f"{n} random 28x28 images"


def median_times(fns: list[Callable[[], object]], repeats: int, warmup: int) -> list[float]:
    """Median seconds per call of each function; the functions take turns, in alternating
    order (ABBA), so that load from other processes and cache state hit them alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = list(enumerate(fns))
        for i, fn in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


@torch.no_grad()
def time_batch(
    codec: nn.Module, peer: PeerAutoencoder, x: Tensor, args: argparse.Namespace
) -> list[list[float]]:
    """``[[audiotok, peer] encode seconds, [audiotok, peer] decode seconds]`` for batch ``x``."""
    codes = codec.encode(x)
    size = tuple(x.shape[-2:])
    enc = median_times([lambda: codec.encode(x), lambda: peer.encode(x)], args.repeats, args.warmup)
    dec = median_times(
        [lambda: codec.decode(codes, size=size), lambda: peer.decode(codes)],
        args.repeats,
        args.warmup,
    )
    return [enc, dec]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="exported image VQ-VAE folder (default: random init)")
    p.add_argument("--data", help="images for the input, e.g. t10k-images-idx3-ubyte.gz")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import vector_quantize_pytorch
    except ImportError:
        raise SystemExit("pip install -c constraints.txt vector-quantize-pytorch first") from None
    codec, where = load_model(args.model)
    peer = PeerAutoencoder(codec).eval()
    images, what = load_images(args.data, max(args.batches))
    with torch.no_grad():
        ours, theirs = codec.encode(images), peer.encode(images)
        agree = float((ours == theirs).float().mean())
        gap = float((codec.decode(ours, size=(28, 28)) - peer.decode(ours)).abs().max())
    peer_version = getattr(vector_quantize_pytorch, "__version__", None)
    if peer_version is None:
        from importlib.metadata import version

        peer_version = version("vector-quantize-pytorch")
    print(f"model: {where}; input: {what}")
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), vector-quantize-pytorch "
        f"{peer_version}; medians of {args.repeats} after {args.warmup} warm-up calls"
    )
    print(f"codes agree on {agree:.1%} of positions; decoded max |diff| {gap:.2e}")
    print()
    print("| operation | batch | audiotok images/s | peer images/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for b in args.batches:
        timed = time_batch(codec, peer, images[:b], args)
        for name, (a, q) in zip(("encode", "decode"), timed, strict=True):
            print(f"| {name} | {b} | {b / a:,.0f} | {b / q:,.0f} | {q / a:.2f}x |")


if __name__ == "__main__":
    main()
