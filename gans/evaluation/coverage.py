"""Class coverage: which classes a generator produces, and how far that is from the real mix.

A pretrained classifier (e.g. gans.evaluation.classifiers.fashion_mnist) labels the generated images;
`class_coverage` compares those labels with the real labels. Two failure modes show up here that
FID blurs together: mode collapse (classes missing, `classes_covered` drops) and class bias (every
class present, but in the wrong proportions, `kl_real_generated` grows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

import torch

from gans.errors import GansError

# A class is covered when its share of the generated samples is at least this fraction of its
# share of the real data: with 10 balanced classes, at least 5% of the samples. It is relative to
# the real share so that it means the same for unbalanced data and any number of classes. Half,
# rather than something smaller such as a tenth, because the labels come from a classifier that
# errs: measured with the shipped Fashion-MNIST classifier on real test images of one class only
# (a perfectly collapsed generator), its mistakes put up to 10% of the samples in one similar
# class (Shirt -> T-shirt/top) and over 1% in up to four. At a tenth such a collapse reads as 2 to
# 5 classes covered; at half, as 1 to 3 (Shirt: 3), while the whole real test set still covers all
# 10 (smallest predicted share 9.5%). Bias short of that (present, but in the wrong proportion) is
# what the KL figure measures.
COVERED_FRACTION = 0.5
# Added to each generated share (then renormalised) so KL stays finite when a class is missing.
# Each class missing from the generated samples then contributes about p * ln(p / EPSILON) nats,
# where p is its real share: 0.1 * ln(0.1 / 1e-6) ~ 1.15 nats per missing class of 10 balanced
# ones. Classes that are present move by at most 1e-6 (absolute): nothing a figure shows.
EPSILON = 1e-6


def class_coverage(predicted: torch.Tensor, real_labels: torch.Tensor, num_classes: int,
                   class_names: list[str]) -> dict:
    """Compare the class mix of generated images (`predicted` labels) with the real labels.

    Returns a dict:
      generated_share   {name: fraction of generated samples with that label} (sums to 1)
      real_share        {name: fraction of real samples with that label} (sums to 1)
      classes_covered   how many classes that occur in the real data reach COVERED_FRACTION of
                        their real share among the generated samples
      num_classes       how many classes occur in the real data (the most classes_covered can be)
      not_covered       names of the real classes below the threshold (missing or rare)
      kl_real_generated KL(real || generated) in nats, generated shares smoothed by EPSILON
      num_generated, num_real, covered_fraction, epsilon: what the figures rest on
    """
    if len(class_names) != num_classes:
        raise GansError(f"class_coverage got {len(class_names)} class names for {num_classes} "
                        f"classes; pass one name per class")
    generated = _shares(predicted, num_classes, "predicted labels")
    real = _shares(real_labels, num_classes, "real labels")

    in_real = real > 0
    # "at least", exactly at the boundary too: 1e-9 absorbs float rounding (0.1 * 0.1 > 0.01)
    covered = in_real & (generated >= COVERED_FRACTION * real * (1 - 1e-9))
    # KL(real || generated) = sum_c real_c * ln(real_c / generated_c). This direction weighs each
    # class by how common it is in the real data and blows up when the generator misses a class
    # the data has, which is exactly mode collapse; KL(generated || real) would barely notice a
    # dropped class and would instead punish generated classes the data lacks (e.g. classifier
    # mistakes). Classes absent from the real data contribute 0 (0 * ln 0 = 0).
    smoothed = (generated + EPSILON) / (1 + num_classes * EPSILON)
    kl = torch.special.xlogy(real, real).sum() - torch.special.xlogy(real, smoothed).sum()
    return {
        "generated_share": dict(zip(class_names, generated.tolist())),
        "real_share": dict(zip(class_names, real.tolist())),
        "classes_covered": int(covered.sum()),
        "num_classes": int(in_real.sum()),
        "not_covered": [name for name, ok, real_class in zip(class_names, covered, in_real)
                        if real_class and not ok],
        "kl_real_generated": max(kl.item(), 0.0),  # never below 0 but for rounding
        "num_generated": len(predicted),
        "num_real": len(real_labels),
        "covered_fraction": COVERED_FRACTION,
        "epsilon": EPSILON,
    }


def _shares(labels: torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    """float64 (num_classes,) fractions of `labels` per class."""
    labels = torch.as_tensor(labels).flatten()
    if labels.numel() == 0:
        raise GansError(f"class_coverage got no {what}; pass at least one label")
    if labels.is_floating_point() or labels.is_complex():
        raise GansError(f"class_coverage wants integer {what}, got {labels.dtype}; "
                        f"pass class indices (e.g. logits.argmax(1))")
    low, high = labels.min().item(), labels.max().item()
    if low < 0 or high >= num_classes:
        raise GansError(f"{what} range over {low}..{high}, outside 0..{num_classes - 1}; "
                        f"pass class indices below num_classes={num_classes}")
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    return counts / counts.sum()


Images = Union[torch.Tensor, Iterable]


@torch.inference_mode()
def predict_classes(classifier: torch.nn.Module, images: Images,
                    batch_size: int = 500) -> torch.Tensor:
    """Predicted class index (int64 (N,), on the CPU) for each image.

    `images` is one tensor (N, C, H, W), cut into `batch_size` chunks, or an iterable of such
    batches (a generator of generator outputs, a DataLoader; from a (images, labels, ...) tuple
    only the first item is used). Images are in whatever the classifier takes: for the
    Fashion-MNIST one, [-1, 1] (or uint8) at any resolution, 1 or 3 channels. The classifier is
    run as it is; put it in eval mode first (load_classifier does).
    """
    if batch_size < 1:
        raise GansError(f"predict_classes batch_size must be at least 1, got {batch_size}")
    device = next(classifier.parameters()).device
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    predictions = []
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        predictions.append(classifier(batch.to(device)).argmax(dim=1).cpu())
    if not predictions:
        return torch.empty(0, dtype=torch.long)
    return torch.cat(predictions)
