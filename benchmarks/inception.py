"""Inception feature extraction speed per setting, and the FID difference each setting causes.

    GANS_CACHE_DIR=... python benchmarks/inception.py [--settings fp32-nchw,fp32,bf16]
        [--batches 16,50] [--speed-images 64] [--rounds 2] [--fid-images 2000]
        [--checkpoint CKPT]

A setting is names joined by `-`: `fp32` or `bf16` (bfloat16 autocast, as
`metrics.inception_precision: bf16`), `nchw` (the default memory layout instead of gans'
channels_last), `gather` (torch-fidelity's resize code instead of gans' matrix products),
`fold` (BatchNorm folded into the convolutions), `compile` (torch.compile), `freeze`
(torch.compile with Inductor's freezing: constant weights, BatchNorm folded, oneDNN weights
prepacked).
Speed: every setting x batch size runs on the same `--speed-images` Fashion-MNIST test images,
interleaved over `--rounds` rounds (drift on a shared machine hits all alike); the median
images/s is printed. Quality: for each precision/fold setting, FID between `--fid-images` test
images and as many train images (a fixed random subset of each), and with --checkpoint also
FID of as many generated images against those test images; the difference from fp32 on the
same images is what the setting costs. The TF-1.x resize to 299x299 is timed on its own too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gans.data import load_images
from gans.evaluation.inception import at_precision, compiled, make_extractor, resolve_inception_weights, \
    tf1_resize, to_uint8_rgb
from gans.evaluation.fid import extract_features, feature_fid, subset
from gans.recipe import DataSection


def fold_batchnorm(extractor: torch.nn.Module) -> torch.nn.Module:
    """Each conv + eval-mode BatchNorm pair as one convolution with a bias."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    for block in extractor.modules():
        if isinstance(block, BasicConv2d):
            block.conv = fuse_conv_bn_eval(block.conv, block.bn)
            block.bn = torch.nn.Identity()
    return extractor.to(memory_format=torch.channels_last)


def build(setting: str, weights) -> torch.nn.Module:
    parts = set(setting.split("-"))
    unknown = parts - {"fp32", "bf16", "nchw", "fold", "compile", "freeze", "gather"}
    if unknown or not parts & {"fp32", "bf16"}:
        raise SystemExit(f"bad setting {setting!r}: fp32 or bf16, then -nchw, -fold, -compile, "
                         "-freeze, -gather")
    extractor = make_extractor(weights, resize="gather" if "gather" in parts else "matmul")
    if "nchw" in parts:
        extractor = extractor.to(memory_format=torch.contiguous_format)
    if "fold" in parts:
        extractor = fold_batchnorm(extractor)
    extractor = at_precision(extractor, "bf16" if "bf16" in parts else "fp32")
    if "compile" in parts:
        extractor.compile()
    if "freeze" in parts:  # what metrics.inception_compile and gans eval --compile run
        extractor = compiled(extractor)
    return extractor


@torch.no_grad()
def images_per_sec(extractor, images: torch.Tensor, batch_size: int) -> float:
    start = time.perf_counter()
    for b in images.split(batch_size):
        extractor(b)
    return len(images) / (time.perf_counter() - start)


def fid(extractor, a: torch.Tensor, b: torch.Tensor, batch_size: int) -> float:
    metric = feature_fid()
    metric.update(extract_features(extractor, a, batch_size), real=True)
    metric.update(extract_features(extractor, b, batch_size), real=False)
    return metric.compute().item()


def generated(checkpoint: str, n: int) -> torch.Tensor:
    from gans.sampling.checkpoint import load_generator
    from gans.sampling.generate import latents

    generator, _, _ = load_generator(checkpoint)
    with torch.no_grad():
        return torch.cat([to_uint8_rgb(generator(z)) for z in
                          latents(n, generator.latent_dim, 0).split(100)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default="fp32-nchw-gather,fp32-gather,fp32,bf16")
    parser.add_argument("--batches", default="16,50")
    parser.add_argument("--speed-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fid-images", type=int, default=2000, help="0 skips the FID part")
    parser.add_argument("--fid-batch", type=int, default=16)
    parser.add_argument("--checkpoint", default=None,
                        help="also compare FID of this checkpoint's images vs the test images")
    args = parser.parse_args()
    settings = [s for s in args.settings.split(",") if s]
    batches = [int(b) for b in args.batches.split(",") if b]
    data = DataSection(name="fashion-mnist", resolution=32, channels=1)
    test = load_images(data, split="test")
    train = load_images(data, split="train")
    weights = resolve_inception_weights()
    extractors = {s: build(s, weights) for s in settings}

    speed_images = to_uint8_rgb(subset(test, args.speed_images, seed=1))
    warmup = {}
    for s, extractor in extractors.items():  # warm-up (and compilation) outside the timing
        start = time.perf_counter()
        for b in batches:
            images_per_sec(extractor, speed_images[:b], b)
        warmup[s] = time.perf_counter() - start
    rates: dict = {(s, b): [] for s in settings for b in batches}
    for _ in range(args.rounds):
        for s in settings:
            for b in batches:
                rates[(s, b)].append(images_per_sec(extractors[s], speed_images, b))
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    resize_rates = {}
    def gathers(x):
        return interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)

    for name, resize in (("torch-fidelity gathers", gathers),
                         ("matrix products", lambda x: tf1_resize(x, 299))):
        start = time.perf_counter()
        for b in speed_images.split(16):
            resize(b.float())
        resize_rates[name] = len(speed_images) / (time.perf_counter() - start)

    print(f"Inception-v3 2048-d features of Fashion-MNIST 32x32 images, "
          f"{torch.get_num_threads()} threads, {args.speed_images} images x {args.rounds} rounds")
    print(f"{'setting':<22} {'batch':>5} {'img/s (median)':>15}  runs")
    base = statistics.median(rates[(settings[0], batches[-1])])
    for (s, b), r in rates.items():
        print(f"{s:<22} {b:>5} {statistics.median(r):>15.1f}  "
              f"{', '.join(f'{x:.1f}' for x in r)}  x{statistics.median(r) / base:.2f}")
    for s, seconds in warmup.items():
        print(f"first batches of {s} (compilation included): {seconds:.1f} s")
    for name, rate in resize_rates.items():
        print(f"TF-1.x resize to 299x299 alone, {name}: {rate:.0f} img/s")
    with torch.no_grad():
        features = {s: extractors[s](speed_images[:16]).float() for s in settings}
    for s in settings:
        base = "bf16" if "bf16" in s.split("-") else "fp32"
        if s != base and base in features:
            gap = (features[s] - features[base]).abs().max().item()
            print(f"features of {s} vs {base}: largest difference {gap:.2e} "
                  f"(largest feature {features[base].abs().max().item():.2f})")

    if args.fid_images:
        n = args.fid_images
        a, b = to_uint8_rgb(subset(test, n, seed=0)), to_uint8_rgb(subset(train, n, seed=0))
        fake = generated(args.checkpoint, n) if args.checkpoint else None
        # layout, resize code and plain compilation leave features within 1e-5: timed, not
        # compared; folding BatchNorm (fold, freeze) changes the rounding, so it is compared
        quality = [s for s in settings if not {"nchw", "compile", "gather"} & set(s.split("-"))]
        figures = {}
        for s in quality:
            start = time.perf_counter()
            figures[s] = [fid(extractors[s], a, b, args.fid_batch)]
            if fake is not None:
                figures[s].append(fid(extractors[s], a, fake, args.fid_batch))
            print(f"  {s}: FID {', '.join(f'{f:.4f}' for f in figures[s])} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        ref = figures.get("fp32")
        print(f"FID, {n} test vs {n} train images"
              + (f"; and {n} generated ({args.checkpoint}) vs the {n} test images" if fake
                 is not None else ""))
        for s, values in figures.items():
            shown = "  ".join(f"{v:.4f}" + (f" (diff vs fp32 {v - r:+.4f})" if ref else "")
                              for v, r in zip(values, ref or values))
            print(f"{s:<22} {shown}")


if __name__ == "__main__":
    main()
