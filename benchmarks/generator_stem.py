"""The DCGAN generator's first layer, and the whole generator, timed two ways: as the 4x4
transposed convolution of the 1x1 latent that it is in the paper, and as the matrix product
gans computes (gans.models.dcgan.LatentProjection; the weights are the same).

    python benchmarks/generator_stem.py [--width 96] [--batch 64] [--steps 40] [--rounds 3]

Forward and backward (into the weights, as in a generator update), in the training layout
(channels_last) and the default one. Runs are interleaved (layer A, layer B, A, B, ...) so that
drift on a shared machine hits both; the median of each is printed, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from gans.models.dcgan import DCGANGenerator, LatentProjection


def as_convolution(generator: DCGANGenerator) -> DCGANGenerator:
    """The same generator with its stem run by torch's transposed convolution."""
    stem = generator.net[0]
    stem.forward = lambda x: F.conv_transpose2d(x.view(x.size(0), -1, 1, 1), stem.weight)
    return generator


def time_steps(run, steps: int) -> float:
    for _ in range(3):
        run()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=96, help="generator width (the recipes: 96)")
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    z = torch.randn(args.batch, args.latent_dim)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"width {args.width}")
    for layout, fmt in (("channels_last", torch.channels_last),
                        ("contiguous", torch.contiguous_format)):
        cases = {}
        for name, wrap in (("transposed convolution", as_convolution), ("matrix product", None)):
            g = DCGANGenerator(latent_dim=args.latent_dim, width=args.width)
            g = (wrap(g) if wrap else g).to(memory_format=fmt)
            assert isinstance(g.net[0], LatentProjection)
            cases[f"stem, {name}"] = lambda s=g.net[0]: s(z).sum().backward()
            cases[f"generator, {name}"] = lambda g=g: g(z).sum().backward()
        times = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, run in cases.items():
                times[name].append(time_steps(run, args.steps))
        print(f"\n{layout}: forward + backward, median ms of {args.rounds} rounds")
        for part in ("stem", "generator"):
            conv = statistics.median(times[f"{part}, transposed convolution"])
            mm = statistics.median(times[f"{part}, matrix product"])
            print(f"  {part:10s} transposed convolution {conv:7.2f}   matrix product {mm:7.2f}"
                  f"   {conv / mm:.2f}x")


if __name__ == "__main__":
    main()
