"""Networks from a recipe: the one place that turns `model.*` and `data.*` into modules."""

from __future__ import annotations

from torch import nn

from gans.data import class_names
from gans.registry import DISCRIMINATORS, GENERATORS


def build_networks(recipe) -> tuple[nn.Module, nn.Module]:
    data = {"channels": recipe.data.channels, "resolution": recipe.data.resolution}
    num_classes = len(class_names(recipe.data))
    if num_classes:  # unconditional networks keep their signature, so plugged-in ones still build
        data["num_classes"] = num_classes
    g_spec, d_spec = dict(recipe.model.generator), dict(recipe.model.discriminator)
    generator = GENERATORS.get(g_spec.pop("name"))(**data, **g_spec)
    discriminator = DISCRIMINATORS.get(d_spec.pop("name"))(**data, **d_spec)
    return generator, discriminator
