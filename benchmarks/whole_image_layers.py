"""DCGAN's two layers whose kernel covers the whole image they act on, timed two ways: as the
convolutions they are in the paper, and as the matrix products gans computes (the weights are
the same). The generator's first layer is a 4x4 transposed convolution of the 1x1 latent
(gans.models.dcgan.LatentProjection); the discriminator's last is a 4x4 convolution of its 4x4
features (WholeImageConv), to one logit, or to 256 features in the class-conditional one.

    python benchmarks/whole_image_layers.py [--width 96] [--batch 64] [--steps 30] [--rounds 5]
        [--layout channels_last|contiguous]

Each layer alone and each whole network, forward and backward, as in a training step: the
generator on `--batch` latents, the discriminator (width 64, minibatch std 4, as the recipes)
on twice that, the reals and fakes of a discriminator update, with the input gradient that R1
and R2 take. Runs are interleaved (convolution, product, convolution, ...) so that drift on a
shared machine hits both; the median of each is printed, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from gans.models.dcgan import DCGANDiscriminator, DCGANGenerator, LatentProjection, WholeImageConv


def as_convolution(network: torch.nn.Module) -> torch.nn.Module:
    """The same network with its whole-image layer run by torch's convolution path."""
    for layer in network.modules():
        if isinstance(layer, LatentProjection):
            layer.forward = lambda x, l=layer: F.conv_transpose2d(
                x.view(x.size(0), -1, 1, 1), l.weight)
        elif isinstance(layer, WholeImageConv):
            layer.forward = lambda x, l=layer: F.conv2d(x, l.weight, l.bias)
    return network


def whole_image_layer(network: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in network.modules() if isinstance(m, (LatentProjection, WholeImageConv)))


def milliseconds(run, steps: int) -> float:
    for _ in range(3):
        run()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=96, help="generator width (the recipes: 96)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layout", choices=("channels_last", "contiguous"),
                        default="channels_last", help="memory layout (the recipes: channels_last)")
    args = parser.parse_args()
    layout = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    z = torch.randn(args.batch, 100)
    images = torch.randn(2 * args.batch, 1, 32, 32).contiguous(memory_format=layout)
    images.requires_grad_(True)
    labels = torch.randint(0, 10, (2 * args.batch,))
    networks = {
        "generator": (lambda: DCGANGenerator(width=args.width), lambda n: n(z)),
        "discriminator": (lambda: DCGANDiscriminator(norm="none", mbstd_group=4),
                          lambda n: n(images)),
        "conditional discriminator": (
            lambda: DCGANDiscriminator(norm="none", mbstd_group=4, num_classes=10),
            lambda n: n(images, labels)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"generator width {args.width}, {args.layout}; forward + backward, median ms of "
          f"{args.rounds} rounds")
    for name, (build, call) in networks.items():
        cases = {}
        for form, wrap in (("convolution", as_convolution), ("product", lambda n: n)):
            torch.manual_seed(0)
            network = wrap(build()).to(memory_format=layout)
            layer = whole_image_layer(network)
            layer_input = []
            hook = layer.register_forward_hook(lambda m, i, o: layer_input.append(i[0].detach()))
            call(network)
            hook.remove()
            x = layer_input[0].requires_grad_(True)
            cases[("layer", form)] = lambda layer=layer, x=x: layer(x).sum().backward()
            cases[("network", form)] = lambda n=network: call(n).sum().backward()
        times = {case: [] for case in cases}
        for _ in range(args.rounds):
            for case, run in cases.items():
                times[case].append(milliseconds(run, args.steps))
        for part in ("layer", "network"):
            conv = statistics.median(times[(part, "convolution")])
            product = statistics.median(times[(part, "product")])
            label = f"{name}, {'its whole-image layer' if part == 'layer' else 'whole'}"
            print(f"  {label:50s} convolution {conv:7.2f}   product {product:7.2f}   "
                  f"{conv / product:.2f}x")


if __name__ == "__main__":
    main()
