"""Adversarial losses and regularizers as plain functions of discriminator outputs.

Each registered loss is a pair: `discriminator(real_logits, fake_logits)` and
`generator(fake_logits)`, plus whether it wants a gradient penalty (WGAN-GP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gans.registry import LOSSES


@dataclass(frozen=True)
class AdversarialLoss:
    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]
    gradient_penalty: bool = False


def non_saturating_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def non_saturating_g(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def critic_g(fake: Tensor) -> Tensor:
    """Generator side of hinge and Wasserstein: raise the critic's score of fakes."""
    return -fake.mean()


def least_squares_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()


def least_squares_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


LOSSES.register("non-saturating")(AdversarialLoss(non_saturating_d, non_saturating_g))
LOSSES.register("hinge")(AdversarialLoss(hinge_d, critic_g))
LOSSES.register("wgan-gp")(AdversarialLoss(wasserstein_d, critic_g, gradient_penalty=True))
LOSSES.register("least-squares")(AdversarialLoss(least_squares_d, least_squares_g))


def r1_penalty(real_images: Tensor, real_logits: Tensor) -> Tensor:
    """Mescheder et al. 2018: E ||grad_x D(x)||^2 on real data (multiply by gamma / 2)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def gradient_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor,
                     fake: Tensor) -> Tensor:
    """Gulrajani et al. 2017: E (||grad D(x_hat)|| - 1)^2 on random interpolates x_hat."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


def path_lengths(images: Tensor, ws: Tensor) -> Tensor:
    """Karras et al. 2020: per image, ||J_w^T y|| for a random image-space direction y, with
    J the Jacobian of the images with respect to w. The penalty keeps it near its running mean
    (the caller tracks that), so equal steps in w make equal changes in the image."""
    direction = torch.randn_like(images) / (images.size(2) * images.size(3)) ** 0.5
    (grad,) = torch.autograd.grad((images * direction).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()
