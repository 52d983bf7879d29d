"""Adversarial losses and regularizers as plain functions of discriminator outputs and
images; objectives (gans/objectives/) weigh them and schedule them into phases."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


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


def zero_centred_penalty(images: Tensor, logits: Tensor) -> Tensor:
    """E ||grad_x D(x)||^2 at the images D saw: R1 on real images (Mescheder et al. 2018), R2
    on fakes (R3GAN uses both). Multiply by gamma / 2."""
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def relativistic_d(real: Tensor, fake: Tensor, all_pairs: bool = False) -> Tensor:
    """RpGAN (Jolicoeur-Martineau 2018, as R3GAN pairs it): D wants each real scored above the
    fake it is paired with. `all_pairs`: every real against every fake of the batch, the same
    expectation with less variance from the pairing, for the price of a B x B matrix."""
    return F.softplus(_pair_differences(fake, real, all_pairs)).mean()


def relativistic_g(real: Tensor, fake: Tensor, all_pairs: bool = False) -> Tensor:
    """RpGAN's generator side: each fake scored above its paired real."""
    return F.softplus(_pair_differences(real, fake, all_pairs)).mean()


def _pair_differences(minuend: Tensor, subtrahend: Tensor, all_pairs: bool) -> Tensor:
    if all_pairs:
        return minuend.unsqueeze(0) - subtrahend.unsqueeze(1)
    return minuend - subtrahend


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
