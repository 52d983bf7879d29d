"""Which classes a pix2pix model's outputs lose: the Fashion-MNIST classifier on the outputs of
every test pair's input, against the input's class, beside the classifier on the true images.

    python benchmarks/pix2pix_confusion.py CHECKPOINT [--seed 0]

Prints the overall accuracy (the same figure as `gans eval CKPT --metrics class_accuracy`),
the most frequent confusions and the accuracy per class on outputs and on true images.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="the dropout noise (gans eval's)")
    args = parser.parse_args()
    import torch

    import gans
    from gans.data import CLASS_NAMES, load_images
    from gans.evaluation.classifiers.fashion_mnist import load_classifier
    from gans.evaluation.inception import to_uint8_rgb
    from gans.sampling.generate import translate

    model = gans.load(args.checkpoint)
    images = load_images(model.recipe.data, split="test")
    outputs = torch.cat([to_uint8_rgb(translate(model.network, chunk, args.seed))
                         for chunk in images.conditions.split(50)])
    classifier = load_classifier("cpu")
    with torch.no_grad():
        def predicted(pixels):
            return torch.cat([classifier(chunk).argmax(1) for chunk in pixels.split(500)])

        on_outputs, on_truths = predicted(outputs), predicted(to_uint8_rgb(images.pixels))
    labels = torch.as_tensor(images.labels)
    names = CLASS_NAMES[model.recipe.data.source]
    wrong = labels != on_outputs
    print(f"accuracy on outputs {(~wrong).float().mean():.4f}, on true images "
          f"{(on_truths == labels).float().mean():.4f}; {int(wrong.sum())} outputs misread")
    confusions = Counter((names[t], names[p]) for t, p in zip(labels[wrong].tolist(),
                                                               on_outputs[wrong].tolist()))
    for (truth, read), count in confusions.most_common(8):
        print(f"  {truth} read as {read}: {count}")
    for index, name in enumerate(names):
        rows = labels == index
        print(f"  {name:12s} outputs {(on_outputs[rows] == index).float().mean():.3f}  "
              f"true images {(on_truths[rows] == index).float().mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
