"""The figures of real data against real data: the ceiling any generator can hope for.

    python benchmarks/fid_floor.py [--data fashion-mnist] [--resolution 32] [--num 10000]

Fashion-MNIST train (a fixed random 10k subset) stands in for a perfect generator against the
10k test images, the reference of the protocol Lucic et al. (NeurIPS 2018) used: FID and KID
give the floor, precision, recall, density and coverage the ceiling of `gans eval --reference
test` (the same code computes them). The features go through gans' own cache, so a later
`gans eval` against the test split reuses them.
"""

import argparse
import time

from gans.data import load_images
from gans.evaluation.evaluate import feature_metrics
from gans.evaluation.inception import EXTRACTOR_NAME, inception, resolve_inception_weights
from gans.evaluation.fid import RESIZE, real_features, real_key
from gans.recipe import INCEPTION_BATCH_SIZE, DataSection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=INCEPTION_BATCH_SIZE)
    args = parser.parse_args()
    section = DataSection(name=args.data, resolution=args.resolution, channels=args.channels)
    weights = resolve_inception_weights()
    extractor = inception(weights)
    start = time.perf_counter()
    features = {}
    for split in ("train", "test"):
        images = load_images(section, split=split)
        key = real_key(section, split, images, weights, args.num)
        features[split], _ = real_features(images, key, extractor, args.batch_size)
    print(f"protocol: {EXTRACTOR_NAME} (sha256 {weights.sha256[:12]}), {args.data} "
          f"{args.resolution}px x{args.channels}, train {len(features['train'])} (as generated) vs "
          f"test {len(features['test'])} (as real), resize {RESIZE}")
    print(f"seconds (features): {time.perf_counter() - start:.0f}")
    results = feature_metrics({"fid", "kid", "pr", "dc"}, features["test"], features["train"],
                              {}, seed=0)
    for name, figure in results.items():
        spread = f" +- {figure['std']:.5f}" if "std" in figure else ""
        print(f"{name}_train_vs_test: {figure['value']:.4f}{spread}")


if __name__ == "__main__":
    main()
