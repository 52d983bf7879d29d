"""Differentiable augmentation of what the discriminator sees, with an adaptive probability.

DiffAugment (Zhao et al. 2020) applies the same random, differentiable transforms to real and
generated images before D, so D cannot memorise a small dataset and G still gets gradients
through them. ADA (Karras et al. 2020) sets how often: each image is augmented with probability
p, and p moves to keep r_t = E[sign(D(real))] near a target (0.6): a D that is too sure of the
real images (r_t high) is overfitting, and gets more augmentation.

Any model can use it: the recipe's `augment` section builds one `Augment`, GANModule passes
both real and fake images through it, and its state (p, the running r_t) lives in buffers, so
checkpoints save it and a resumed run goes on with the same p.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans.registry import AUGMENTATIONS


def _uniform(images: Tensor, low: float, high: float) -> Tensor:
    return torch.empty(images.size(0), 1, 1, 1, device=images.device,
                       dtype=images.dtype).uniform_(low, high)


@AUGMENTATIONS.register("color")
def color(images: Tensor) -> Tensor:
    """Brightness, saturation and contrast, each by a random amount per image."""
    images = images + _uniform(images, -0.5, 0.5)
    if images.size(1) > 1:
        mean = images.mean(1, keepdim=True)
        images = (images - mean) * _uniform(images, 0.0, 2.0) + mean
    mean = images.mean((1, 2, 3), keepdim=True)
    return (images - mean) * _uniform(images, 0.5, 1.5) + mean


@AUGMENTATIONS.register("translation")
def translation(images: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift by up to `ratio` of the size, a whole number of pixels, padding with zeros."""
    n, _, h, w = images.shape
    max_shift = torch.tensor([w, h], device=images.device) * ratio
    pixels = torch.round((torch.rand(n, 2, device=images.device) * 2 - 1) * max_shift)
    # An affine grid that moves by whole pixels samples pixel centres exactly: nearest
    # sampling is then an exact, differentiable shift.
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = -2.0 * pixels / torch.tensor([w, h], device=images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


@AUGMENTATIONS.register("cutout")
def cutout(images: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a square of `ratio` of the size at a random place in each image."""
    n, _, h, w = images.shape
    size = torch.tensor([int(h * ratio + 0.5), int(w * ratio + 0.5)], device=images.device)
    centre = (torch.rand(n, 2, device=images.device) *
              torch.tensor([h, w], device=images.device)).long()
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    inside = ((ys - centre[:, 0, None, None]).abs() < size[0] // 2 + 1) & \
             ((xs - centre[:, 1, None, None]).abs() < size[1] // 2 + 1)
    return images * (~inside).unsqueeze(1).to(images.dtype)



class Augment(nn.Module):
    """Each transform of `policy` applied to each image with probability p.

    With `target` set, `accumulate` and `adjust` move p (ADA); otherwise p stays as given.
    `speed_kimg`: how many thousand images it takes p to go from 0 to 1 at the fastest.
    """

    def __init__(self, policy: list, p: float = 0.0, target: Optional[float] = None,
                 interval: int = 4, speed_kimg: float = 100.0):
        super().__init__()
        self.transforms = [AUGMENTATIONS.get(name, where="augment.policy") for name in policy]
        self.policy = list(policy)
        self.fixed_off = target is None and p == 0  # nothing to do, and nothing will change
        self.target, self.interval, self.speed_kimg = target, interval, speed_kimg
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("signs", torch.zeros(()))  # sum of sign(D(real)) since the last adjust
        self.register_buffer("seen", torch.zeros(()))  # real images counted in `signs`
        self.register_buffer("rt", torch.zeros(()))  # the last r_t, for logging

    @property
    def active(self) -> bool:
        return bool(self.policy)

    @property
    def adaptive(self) -> bool:
        return self.active and self.target is not None

    def forward(self, images: Tensor) -> Tensor:
        if self.fixed_off:
            return images
        for transform in self.transforms:
            chosen = torch.rand(images.size(0), 1, 1, 1, device=images.device) < self.p
            images = torch.where(chosen, transform(images), images)
        return images

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        self.signs += real_logits.detach().sign().sum().to(self.signs.dtype)
        self.seen += real_logits.numel()

    @torch.no_grad()
    def adjust(self, signs: Tensor, seen: Tensor) -> None:
        """One ADA update from r_t = signs / seen (sums over every process)."""
        self.rt.copy_(signs / seen.clamp(min=1))
        step = torch.sign(self.rt - self.target) * seen / (self.speed_kimg * 1000.0)
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.signs.zero_()
        self.seen.zero_()
