"""The classic adversarial objectives: non-saturating, hinge, least squares and WGAN-GP, each
with optional lazy R1 on reals and lazy path-length regularization of a style generator.

Phases, as in StyleGAN2-ADA's loss:
    Dmain  every D update     D(real) vs D(G(z)) on detached fakes
    Dr1    every r1_every     (gamma / 2) ||grad D(real)||^2, scaled by r1_every (lazy)
    Dgp    every D update     WGAN-GP only: gp_weight (||grad D(x_hat)|| - 1)^2
    Gmain  every G update     fool D on the fakes of the same iteration
    Gpl    every pl_every     path-length penalty on fresh latents, scaled by pl_every (lazy)
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gans.models.base import StyleGenerator
from gans.objectives import losses
from gans.objectives.base import Objective, Phase, StepContext, TopK, check, lazy_weight
from gans.registry import OBJECTIVES


class Adversarial(Objective):
    """One adversarial loss pair plus the optional regularizers; `loss.name` picks the pair."""

    registered_name = "adversarial"
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    gradient_penalty = False

    def __init__(self, r1_gamma: float = 0.0, r1_every: int = 1, pl_weight: float = 0.0,
                 pl_every: int = 4, gp_weight: float = 10.0, pl_through_mapping: bool = False,
                 top_k: float = 1.0, top_k_kimg: float = 4000.0):
        super().__init__()
        self.top_k = TopK(top_k, top_k_kimg)
        for key, value in (("r1_gamma", r1_gamma), ("pl_weight", pl_weight),
                           ("gp_weight", gp_weight)):
            check(value >= 0, key, f"must not be negative, got {value}")
        for key, value in (("r1_every", r1_every), ("pl_every", pl_every)):
            check(value >= 1, key, f"must be at least 1, got {value}")
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.pl_weight, self.pl_every = pl_weight, pl_every
        self.gp_weight = gp_weight
        self.pl_through_mapping = pl_through_mapping
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean of the path lengths
        self.phases = [Phase("Dmain", "discriminator", self.d_main)]
        if r1_gamma > 0:
            self.phases.append(Phase("Dr1", "discriminator", self.d_r1, every=r1_every,
                                     input_grad=("real",), double_backward=True))
        if self.gradient_penalty:
            self.phases.append(Phase("Dgp", "discriminator", self.d_gp, double_backward=True))
        self.phases.append(Phase("Gmain", "generator", self.g_main))
        if pl_weight > 0:
            self.phases.append(Phase("Gpl", "generator", self.g_path_length, every=pl_every))

    @property
    def requires(self) -> dict:
        return {"generator": (StyleGenerator, "pl_weight", 0)} if self.pl_weight > 0 else {}

    def describe(self) -> str:
        parts = [self.registered_name]
        if self.r1_gamma:
            parts.append(f"R1 gamma {self.r1_gamma:g} every {self.r1_every}")
        if self.gradient_penalty:
            parts.append(f"gradient penalty {self.gp_weight:g}")
        if self.pl_weight:
            parts.append(f"path length {self.pl_weight:g} every {self.pl_every}")
        if self.top_k.active:
            parts.append(self.top_k.describe())
        return ", ".join(parts)

    def d_main(self, ctx: StepContext) -> dict:
        real_logits, fake_logits = ctx.d_logits()
        return {"d_adversarial": self.d_loss(real_logits, fake_logits)}

    def d_r1(self, ctx: StepContext) -> dict:
        real_logits, _ = ctx.d_logits()
        return {"r1": lazy_weight(0.5 * self.r1_gamma, self.r1_every)
                * losses.zero_centred_penalty(ctx.d_real, real_logits)}

    def d_gp(self, ctx: StepContext) -> dict:
        labels = ctx.real_labels
        discriminator = ctx.discriminator if labels is None else (
            lambda images: ctx.discriminator(images, labels))
        real, fake = ctx.d_seen
        return {"gp": self.gp_weight * losses.gradient_penalty(discriminator, real.detach(), fake)}

    def g_main(self, ctx: StepContext) -> dict:
        fake_logits = ctx.g_logits()
        kept = self.top_k.kept(fake_logits, ctx.kimg)
        return {"g_adversarial": self.g_loss(fake_logits if kept is None else fake_logits[kept])}

    def g_path_length(self, ctx: StepContext) -> dict:
        """(|J_w^T y| - running mean)^2 on half a batch of fresh latents (StyleGAN2's Greg).

        By default w is detached, so the penalty shapes the synthesis network alone;
        `pl_through_mapping` lets it reach the mapping network too, as StyleGAN2-ADA's loss does
        (docs/models.md, "Where the step departs from the papers").
        """
        generator, n = ctx.generator, max(1, ctx.batch_size // 2)
        labels = ctx.sample_labels(n)
        conditioned = {} if labels is None else {"labels": labels}
        ws = generator.broadcast(generator.mapping(ctx.latents(n), **conditioned))
        if not self.pl_through_mapping:
            ws = ws.detach().requires_grad_(True)
        lengths = losses.path_lengths(generator.synthesis(ws), ws)
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean().to(self.pl_mean.dtype), 0.01))
        penalty = (lengths - self.pl_mean).square().mean()
        return {"path_length": penalty * lazy_weight(self.pl_weight, self.pl_every)}

    def logged(self) -> dict:
        path_length = {"loss/path_length_mean": self.pl_mean} if self.pl_weight > 0 else {}
        return {**path_length, **self.top_k.logged()}


@OBJECTIVES.register("non-saturating")
class NonSaturating(Adversarial):
    """Goodfellow et al. 2014, the generator maximising log D(G(z))."""
    registered_name = "non-saturating"
    d_loss = staticmethod(losses.non_saturating_d)
    g_loss = staticmethod(losses.non_saturating_g)


@OBJECTIVES.register("hinge")
class Hinge(Adversarial):
    """Lim & Ye 2017; the usual partner of spectral normalization."""
    registered_name = "hinge"
    d_loss = staticmethod(losses.hinge_d)
    g_loss = staticmethod(losses.critic_g)


@OBJECTIVES.register("least-squares")
class LeastSquares(Adversarial):
    """Mao et al. 2017 (LSGAN, a-b-c = 0-1-1)."""
    registered_name = "least-squares"
    d_loss = staticmethod(losses.least_squares_d)
    g_loss = staticmethod(losses.least_squares_g)


@OBJECTIVES.register("wgan-gp")
class WganGp(Adversarial):
    """Gulrajani et al. 2017: the Wasserstein critic with its gradient penalty (Dgp)."""
    registered_name = "wgan-gp"
    d_loss = staticmethod(losses.wasserstein_d)
    g_loss = staticmethod(losses.critic_g)
    gradient_penalty = True
