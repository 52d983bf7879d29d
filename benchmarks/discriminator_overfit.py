"""Does the discriminator memorise its training images? D's scores of train vs held-out reals.

    python benchmarks/discriminator_overfit.py RUN/checkpoints/step-*.ckpt [--images 4992]

For each checkpoint, D scores the first N images of the training split and the first N of the
test split (same data section as the run, so the same resolution and channels). A D that has
memorised its training set scores the images it was trained on higher than unseen ones of the
same distribution: that gap is what ADA's r_t heuristic watches indirectly, and what
augmentation (`augment.policy`, `augment.ada_target`) exists to close. A gap near zero says D
generalises, so augmenting what it sees would only slow it down.

Printed per checkpoint: the mean logit on each split, their gap, the gap in units of the
logits' pooled standard deviation, and the fraction of train images scored above the test
median (0.5 when D cannot tell them apart).
"""

from __future__ import annotations

import argparse
import warnings

import torch

from gans.data import as_signed, load_images
from gans.sampling.checkpoint import checkpoint_recipe, load_discriminator, read_checkpoint


def scores(discriminator: torch.nn.Module, images, count: int, batch: int,
           conditional: bool) -> torch.Tensor:
    """D's logits of the first `count` images (with their classes, for a conditional D)."""
    logits = []
    # Batches of the training size keep minibatch-std groups as D saw them in training.
    for i in range(0, count, batch):
        labels = torch.as_tensor(images.labels[i:i + batch]).long() if conditional else None
        logits.append(discriminator(as_signed(images.pixels[i:i + batch]), labels).flatten())
    return torch.cat(logits).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--images", type=int, default=4992,
                        help="images per split (a multiple of the batch keeps groups whole)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)

    recipe = checkpoint_recipe(read_checkpoint(args.checkpoints[0])["hyper_parameters"]["recipe"],
                               args.checkpoints[0])
    batch = recipe.train.batch_size
    splits = {split: load_images(recipe.data, split) for split in ("train", "test")}
    print(f"{recipe.name}: {args.images} train and {args.images} test images, batch {batch}")
    for path in args.checkpoints:
        discriminator = load_discriminator(path)
        train, test = (scores(discriminator, splits[s], args.images, batch,
                              recipe.data.conditional)
                       for s in ("train", "test"))
        gap = train.mean() - test.mean()
        pooled = torch.cat([train, test]).std()
        print(f"{path}: train {train.mean():.3f}  test {test.mean():.3f}  gap {gap:.3f}  "
              f"gap/std {gap / pooled:.3f}  train above test median "
              f"{(train > test.median()).float().mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
