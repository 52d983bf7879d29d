"""Networks from a recipe: the one place that turns `model.*` and `data.*` into modules."""

from __future__ import annotations

from torch import nn

from gans.data import class_names, is_paired
from gans.errors import GansError
from gans.models.base import Discriminator, Generator, Translator, missing
from gans.registry import DISCRIMINATORS, GENERATORS


def build_networks(recipe) -> tuple[nn.Module, nn.Module]:
    data = {"channels": recipe.data.channels, "resolution": recipe.data.resolution}
    num_classes = len(class_names(recipe.data))
    if num_classes:  # unconditional networks keep their signature, so plugged-in ones still build
        data["num_classes"] = num_classes
    g_spec, d_spec = dict(recipe.model.generator), dict(recipe.model.discriminator)
    g_name, d_name = g_spec.pop("name"), d_spec.pop("name")
    generator = GENERATORS.get(g_name)(**data, **g_spec)
    discriminator = DISCRIMINATORS.get(d_name)(**data, **d_spec)
    g_protocol, g_needs = (Translator, "translates_images and forward(condition)") \
        if is_paired(recipe.data) else (Generator, "latent_dim and forward(z, labels=None)")
    for key, name, network, protocol, needs in (
            ("model.generator", g_name, generator, g_protocol, g_needs),
            ("model.discriminator", d_name, discriminator, Discriminator,
             "forward(images, labels=None) returning one logit per image")):
        lacking = missing(network, protocol)
        if lacking:
            raise GansError(f"{key}: {name!r} has no {', '.join(lacking)}; a "
                            f"{protocol.__name__.lower()} needs {needs} (docs/architecture.md)")
    pack = getattr(discriminator, "pack", 1)
    if recipe.train.batch_size % pack:
        raise GansError(f"train.batch_size {recipe.train.batch_size} does not divide into the "
                        f"discriminator's groups of model.discriminator.pack {pack}: make it a "
                        f"multiple of {pack}")
    return generator, discriminator
