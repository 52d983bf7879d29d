"""The model interface, written down once.

Every generator: `latent_dim` and `forward(z, labels=None) -> images in about [-1, 1]`.
A style-based generator adds `mapping(z, truncation_psi=1.0, labels=None) -> w`,
`synthesis(ws, noise=True) -> images`, `broadcast(w) -> ws`, `num_ws` and a tracked `w_avg`.
A conditional network (generator or discriminator) has `num_classes` > 0 and takes one class
index per image. Every discriminator: `forward(images, labels=None) -> one logit per image`
(or one per patch, (N, P): the losses average over all of them).
An image-to-image generator (pix2pix's `unet`) is a `Translator` instead: no latent, its noise
is dropout, and `forward(condition) -> image` maps an input image (a sketch) in [-1, 1] to an
image; paired data trains it, and its discriminator gets the input images as its `labels`.

Recipe validation, sampling (truncation, style mixing, interpolation in w) and objectives ask
`missing(cls_or_network, Protocol)` here, so a model that lacks a member is refused in one line
that names it, wherever it is used.
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    latent_dim: int

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class StyleGenerator(Generator, Protocol):
    num_ws: int
    w_avg: Tensor

    def mapping(self, z: Tensor, truncation_psi: float = 1.0,
                labels: Optional[Tensor] = None) -> Tensor: ...

    def synthesis(self, ws: Tensor, noise: bool = True) -> Tensor: ...

    def broadcast(self, w: Tensor) -> Tensor: ...


@runtime_checkable
class Translator(Protocol):
    translates_images: bool  # a class attribute, so that recipes are checked before building

    def forward(self, condition: Tensor) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    def forward(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...


# Members set in __init__ (attributes, buffers) cannot be seen on a class before it is built.
INSTANCE_MEMBERS = {"latent_dim", "num_ws", "w_avg"}


def members(protocol: type) -> list[str]:
    names = []
    for klass in reversed(protocol.__mro__):
        if klass in (Protocol, object) or not getattr(klass, "_is_protocol", False):
            continue
        names += [n for n in (*getattr(klass, "__annotations__", {}), *vars(klass))
                  if not n.startswith("_") and n not in names]
    return names


def missing(model, protocol: type) -> list[str]:
    """The members of `protocol` that `model` (a built network, or a class, whose attributes
    set in __init__ are then taken on trust) lacks."""
    built = not isinstance(model, type)
    return [name for name in members(protocol)
            if not hasattr(model, name) and (built or name not in INSTANCE_MEMBERS)]


def describe(protocol: type) -> str:
    return {Generator: "a generator", StyleGenerator: "a style generator (mapping network)",
            Discriminator: "a discriminator",
            Translator: "an image-to-image generator (forward(condition))"
            }.get(protocol, protocol.__name__)
