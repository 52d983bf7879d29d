"""FID between two splits of real data: the floor any generator can hope for under a protocol.

    python benchmarks/fid_floor.py [--data fashion-mnist] [--resolution 32] [--num 10000]

Fashion-MNIST train (a fixed random 10k subset) against the 10k test images is the floor of the
protocol Lucic et al. (NeurIPS 2018) used: 10k generated images against the test split. The
features go through gans' own cache, so a later `gans eval` against the test split reuses them.
"""

import argparse
import time

from gans.data import load_images
from gans.evaluation.inception import EXTRACTOR_NAME, make_extractor, resolve_inception_weights
from gans.evaluation.fid import RESIZE, feature_fid, real_features, real_key
from gans.recipe import DataSection


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    section = DataSection(name=args.data, resolution=args.resolution, channels=args.channels)
    weights = resolve_inception_weights()
    extractor = make_extractor(weights)
    fid = feature_fid()
    start = time.perf_counter()
    sizes = {}
    for split, real in (("train", True), ("test", False)):
        images = load_images(section, split=split)
        key = real_key(section, split, images, weights, args.num)
        features, _ = real_features(images, key, extractor, args.batch_size)
        sizes[split] = len(features)
        fid.update(features, real=real)
    print(f"protocol: {EXTRACTOR_NAME} (sha256 {weights.sha256[:12]}), {args.data} "
          f"{args.resolution}px x{args.channels}, train {sizes['train']} vs test {sizes['test']}, "
          f"resize {RESIZE}")
    print(f"seconds: {time.perf_counter() - start:.0f}")
    print(f"fid_train_vs_test: {fid.compute().item():.3f}")


if __name__ == "__main__":
    main()
