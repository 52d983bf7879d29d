"""Milliseconds of each part of a training step of a recipe's networks, bf16 autocast on the
CPU: the generator's forward and backward, the discriminator's forward alone (what
`loss.reuse_real_logits` saves), forward and backward, and an R1 pass. Batch of the recipe.

    python benchmarks/step_parts.py [recipes/dcgan/fashion-mnist-rpgan.yaml]
"""

from __future__ import annotations

import sys

import torch

from gans.training.module import GANModule
from whole_image_layers import milliseconds  # benchmarks/, beside this script


def main(recipe: str) -> None:
    torch.manual_seed(0)
    module = GANModule.from_recipe(recipe)
    generator, discriminator = module.generator, module.discriminator
    batch, resolution = module.recipe.train.batch_size, module.recipe.data.resolution
    real = torch.randn(batch, module.recipe.data.channels, resolution, resolution)
    if module.recipe.train.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    z = torch.randn(batch, generator.latent_dim)

    def bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def generator_forward_backward():
        with bf16():
            images = generator(z)
        images.float().mean().backward()

    def discriminator_forward():
        with torch.no_grad(), bf16():
            discriminator(real)

    def discriminator_forward_backward():
        with bf16():
            logits = discriminator(real)
        logits.float().mean().backward()

    def r1_pass():
        images = real.detach().requires_grad_(True)
        with bf16():
            logits = discriminator(images)
        (grad,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)
        grad.square().sum().backward()

    print(f"{recipe}, batch {batch}, {torch.get_num_threads()} threads")
    for name, fn in (("G forward + backward", generator_forward_backward),
                     ("D forward, no gradient", discriminator_forward),
                     ("D forward + backward", discriminator_forward_backward),
                     ("D R1 pass (double backward)", r1_pass)):
        print(f"{name:30s} {milliseconds(fn, 20):7.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "recipes/dcgan/fashion-mnist-rpgan.yaml")
