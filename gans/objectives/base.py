"""What an objective is: named phases of loss terms, and the step context they read.

The model is StyleGAN2-ADA's `training/loss.py`: one iteration of the algorithm is a few named
phases (Dmain, Dreg, Gmain, Greg). A `Phase` says which network it updates, how often it runs
(every k-th update of that network: lazy regularization when k > 1), and maps a `StepContext`
to named loss terms, already weighted. The training step (gans/training/module.py) sums the
terms of every phase that is due for a network, back-propagates the sum once, guards it
against non-finite values and steps that network's optimizer. So a new loss, regularizer or
reconstruction term is one `Objective` subclass in one file, named in a recipe's `loss.name`.

Objectives are `nn.Module`s so that their running statistics (the path-length mean, say)
travel in checkpoints and are averaged over processes like the networks' buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import Tensor, nn

NETWORKS = ("discriminator", "generator")


@dataclass(frozen=True)
class Phase:
    """One line of the algorithm.

    `terms(ctx)` returns {term name: weighted loss}; the step adds them up in order. `every`
    counts updates of `network`: a lazy regularizer with every=16 runs at discriminator updates
    0, 16, 32, ... and should scale its weight by 16 to keep its average strength.
    `input_grad` names the discriminator inputs ("real", "fake") whose gradient the phase
    takes (R1, R2): the step makes those inputs require grad before D sees them.
    `double_backward`: the phase differentiates a gradient, which compiled graphs cannot.
    """

    name: str
    network: str
    terms: Callable[["StepContext"], dict]
    every: int = 1
    input_grad: tuple = ()
    double_backward: bool = False

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"phase {self.name!r}: network must be one of {NETWORKS}, "
                             f"got {self.network!r}")
        if self.every < 1:
            raise ValueError(f"phase {self.name!r}: every must be at least 1, got {self.every}")


class Objective(nn.Module):
    """Base of every objective: subclasses build their phases in `__init__`.

    `requires`: what the objective needs of the networks, as {network: (protocol, the loss key
    that asks for it, the value that turns it off)}, e.g. path length needs a style generator;
    recipe validation checks it against the models' interfaces (gans/models/base.py) before
    anything trains.
    """

    requires: dict = {}
    # The loss keys that decay a weight along optim.schedule (as set, e.g. final_gamma_scale
    # below 1): recipe validation refuses them under a constant schedule, where they would do
    # nothing.
    scheduled: tuple = ()
    # True: the objective compares each output with its target (an L1 term), so it needs
    # paired data, whose fakes are made from the reals' own input images.
    paired: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[Phase] = []

    def describe(self) -> str:
        """One line for model cards: the objective and its weights."""
        return type(self).__name__

    def logged(self) -> dict:
        """Extra scalars for the logs at log steps (running statistics, say)."""
        return {}


class StepContext:
    """What the phases of one iteration read, computed once and shared.

    Everything random (augmentation, penalties' interpolation weights, fresh latents) draws
    from the streams the step seeded, in the order the phases ask: the same recipe, step and
    rank give the same draws, so a resumed run continues bit for bit.
    """

    def __init__(self, module: nn.Module, real: Tensor, real_labels: Optional[Tensor],
                 z: Tensor, fake_labels: Optional[Tensor], fake: Tensor,
                 input_grad: frozenset = frozenset(), grad_through_augment: bool = False,
                 kimg: float = 0.0, decay_left: float = 1.0):
        self.module = module  # the GANModule: latent streams, networks, augmentation
        self.generator: nn.Module = module.generator
        self.discriminator: nn.Module = module.discriminator
        self.augment = module.augment
        # The condition of D and G: class indices, or for paired data (pix2pix) the input
        # images in [-1, 1], the same for reals and fakes (z is None then: no latent).
        self.real, self.real_labels = real, real_labels
        self.z, self.fake_labels, self.fake = z, fake_labels, fake
        self.input_grad = input_grad
        self.grad_through_augment = grad_through_augment  # augment.penalties_at: original
        self.kimg = kimg  # thousands of real images shown before this step, over all processes
        # Where the learning-rate schedule is (optim.schedule): 1 until optim.decay_start, 0 at
        # the run's end; weights that decay with it take `along_decay`.
        self.decay_left = decay_left
        self._d_logits: Optional[tuple] = None
        self._g_logits: Optional[Tensor] = None
        self._g_real_logits: Optional[Tensor] = None
        # Where penalties take D's input gradient: the augmented images D saw in its update,
        # or the originals when penalties differentiate through the augmentation.
        self.d_real: Optional[Tensor] = None
        self.d_fake: Optional[Tensor] = None
        self.d_seen: Optional[tuple] = None  # (real, fake) as D saw them, augmented

    @property
    def batch_size(self) -> int:
        return self.real.size(0)

    def latents(self, n: int) -> Tensor:
        """`n` fresh latents from this rank's seeded stream."""
        return self.module.latents(n)

    def sample_labels(self, n: int) -> Optional[Tensor]:
        """Classes for `n` fresh fakes (None when unconditional), from the same stream."""
        return self.module.fake_labels(n)

    def d_logits(self) -> tuple[Tensor, Tensor]:
        """(D(real), D(fake)) for the discriminator update: both batches augmented alike, the
        fakes detached from G. Inputs named in `input_grad` require grad: at the augmented
        images D sees, or at the originals (`augment.penalties_at: original`); `d_real` and
        `d_fake` are where to differentiate."""
        if self._d_logits is None:
            real, self.d_real = self._discriminator_input(self.real, "real")
            fake, self.d_fake = self._discriminator_input(self.fake.detach(), "fake")
            self.d_seen = (real, fake)
            self._d_logits = (self.discriminator(real, self.real_labels),
                              self.discriminator(fake, self.fake_labels))
        return self._d_logits

    def _discriminator_input(self, images: Tensor, kind: str) -> tuple[Tensor, Tensor]:
        """(what D sees, where a penalty takes its gradient)."""
        if kind not in self.input_grad:
            seen = self.augment(images)
            return seen, seen
        if self.grad_through_augment:
            original = images.detach().requires_grad_(True)
            return self.augment(original), original
        seen = self.augment(images).detach().requires_grad_(True)
        return seen, seen

    def use_fakes_for_generator(self, z: Optional[Tensor], labels: Optional[Tensor]) -> None:
        """The generator update on fresh latents (train.g_fresh_latents; for paired data, fresh
        dropout), not on the fakes the discriminator update saw."""
        self.z, self.fake_labels = z, labels
        self.fake = self.module.fakes(z, labels)
        self._g_logits = self._g_real_logits = None

    def g_logits(self) -> Tensor:
        """D(fake) for the generator update: gradients flow through the fakes into G."""
        if self._g_logits is None:
            self._g_logits = self.discriminator(self.augment(self.fake), self.fake_labels)
        return self._g_logits

    def g_real_logits(self) -> Tensor:
        """D(real) during the generator update, for losses whose G side compares with real
        images (relativistic pairing); D's weights are frozen then, so no D gradient."""
        if self._g_real_logits is None:
            self._g_real_logits = self.discriminator(self.augment(self.real), self.real_labels)
        return self._g_real_logits

    @property
    def computed_d_logits(self) -> Optional[tuple]:
        """(D(real), D(fake)) of the discriminator update if a phase computed them, else None."""
        return self._d_logits

    def logged(self) -> dict:
        """Mean logits of the discriminator update, for the logs (when it computed them)."""
        if self._d_logits is None:
            return {}
        real, fake = self._d_logits
        return {"D/real": real.detach().mean(), "D/fake": fake.detach().mean()}


def check(condition: bool, key: str, message: str) -> None:
    """A recipe key of an objective out of range: recipe validation names `loss.<key>`."""
    if not condition:
        raise ObjectiveKeyError(key, message)


class ObjectiveKeyError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(f"key 'loss.{key}' {message}")
        self.key = key


class TopK:
    """Top-k generator updates (Sinha et al. 2020): the generator learns only from the fakes
    the discriminator scores most real, the rest of the batch dropped from its loss.

    Early on every fake counts, so the generator first spreads over the data; the kept fraction
    then falls linearly to `floor` over `kimg` thousand images and stays there. The paper
    multiplies k by 0.99 per epoch down to half the batch, which on a 60,000-image dataset
    reaches one half after about 4,100 kimg.
    """

    def __init__(self, floor: float = 1.0, kimg: float = 4000.0):
        check(0.0 < floor <= 1.0, "top_k",
              f"must be the fraction of fakes kept, in (0, 1] (1 keeps all), got {floor}")
        check(kimg >= 0.0, "top_k_kimg", f"must not be negative, got {kimg}")
        self.floor, self.kimg = floor, kimg
        self.last_fraction = 1.0

    @property
    def active(self) -> bool:
        return self.floor < 1.0

    def fraction(self, kimg: float) -> float:
        if self.kimg == 0.0:
            return self.floor
        return max(self.floor, 1.0 - (1.0 - self.floor) * kimg / self.kimg)

    def kept(self, fake_logits: Tensor, kimg: float) -> Optional[Tensor]:
        """Indices of the fakes to learn from, the highest-scored first; None keeps all."""
        if not self.active:
            return None
        self.last_fraction = self.fraction(kimg)
        k = max(1, round(self.last_fraction * fake_logits.size(0)))
        return fake_logits.detach().topk(k).indices

    def describe(self) -> str:
        return f"top-k to {self.floor:g} of the fakes over {self.kimg:g} kimg" if self.active else ""

    def logged(self) -> dict:
        return {"loss/top_k_fraction": self.last_fraction} if self.active else {}


def along_decay(final_scale: float, decay_left: float) -> float:
    """A factor on the learning-rate schedule's curve: 1 before its decay, `final_scale` at the
    run's end. The learning rates take it (optim.final_lr_scale), and so can a loss weight."""
    return final_scale + (1.0 - final_scale) * decay_left


def lazy_weight(weight: float, every: int) -> float:
    """A lazy regularizer's weight: run every k-th update, it is scaled by k to keep its
    average strength (StyleGAN2, appendix B)."""
    return weight * every


def due(phase: Phase, updates_done: int) -> bool:
    """Whether `phase` runs at its network's update number `updates_done` (from 0)."""
    return updates_done % phase.every == 0


def build_objective(recipe) -> Objective:
    """The objective that `loss.name` names, with the section's other keys as arguments."""
    from gans.registry import OBJECTIVES

    spec = dict(recipe.loss)
    return OBJECTIVES.get(spec.pop("name"))(**spec)
