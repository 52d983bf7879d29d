"""Objectives: what one training iteration computes, as named phases of loss terms.

An objective (registered by name, or named by dotted path in `loss.name`) lists its phases:
each updates one network, runs every k-th update of that network, and maps a step context
(real images, latents, fakes, the networks, the augmentation) to named loss terms. The
training step runs the phases that are due and nothing else (docs/architecture.md).
"""
