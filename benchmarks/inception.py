"""Inception feature extraction speed per setting, and how far each moves the features.

    python benchmarks/inception.py [--images 64]

Prints images/s for the default layout and channels_last at two batch sizes, and the largest
feature difference from the default fp32 layout. Figures are from this machine only: run the
settings in one process, back to back, and compare ratios.
"""

import argparse
import time

import torch

from gans.inception import make_extractor, resolve_inception_weights


def run(model, images, batch_size):
    start = time.perf_counter()
    with torch.no_grad():
        features = torch.cat([model(b).float() for b in images.split(batch_size)])
    return len(images) / (time.perf_counter() - start), features


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    weights = resolve_inception_weights()
    channels_last = make_extractor(weights)
    default = make_extractor(weights).to(memory_format=torch.contiguous_format)
    run(default, images[:16], 16)  # warm-up
    _, reference = run(default, images, 50)
    rows = []
    for name, model in (("default layout", default), ("channels_last", channels_last)):
        for batch_size in (16, 50):
            rate, features = run(model, images, batch_size)
            rows.append((name, batch_size, rate, (features - reference).abs().max().item()))
    print(f"{'setting':<16} {'batch':>5} {'img/s':>7} {'max |feature diff|':>19}")
    for name, batch_size, rate, diff in rows:
        print(f"{name:<16} {batch_size:>5} {rate:>7.1f} {diff:>19.2e}")
    base = rows[1][2]
    print(f"channels_last_speedup_vs_default_batch50: {rows[3][2] / base:.2f}")


if __name__ == "__main__":
    main()
