"""pix2pix's objective (Isola et al. 2017, eq. 4): the conditional non-saturating GAN loss plus
lambda times the L1 distance between each output and its target.

    Dmain  every D update   (1/2) [ -log D(x, y) - log(1 - D(x, G(x))) ]   the paper halves D's
                                                                           loss to slow D down
    Gmain  every G update   -log D(x, G(x)) + l1_weight · |y - G(x)|_1    mean over pixels

x is the input (the sketch), y its target image; D sees both as a pair, and the step makes the
fakes from the same batch's inputs as the reals, so the L1 term compares each output with its
own target. Paired data only (recipe validation checks).
"""

from __future__ import annotations

from gans.objectives import losses
from gans.objectives.base import Objective, Phase, StepContext, check
from gans.registry import OBJECTIVES


@OBJECTIVES.register("pix2pix")
class Pix2Pix(Objective):
    paired = True

    def __init__(self, l1_weight: float = 100.0, d_weight: float = 0.5):
        super().__init__()
        check(l1_weight >= 0, "l1_weight", f"must not be negative, got {l1_weight}")
        check(d_weight > 0, "d_weight", f"must be positive, got {d_weight}")
        self.l1_weight, self.d_weight = l1_weight, d_weight
        self.phases = [Phase("Dmain", "discriminator", self.d_main),
                       Phase("Gmain", "generator", self.g_main)]

    def describe(self) -> str:
        return f"pix2pix (non-saturating, L1 weight {self.l1_weight:g})"

    def d_main(self, ctx: StepContext) -> dict:
        real_logits, fake_logits = ctx.d_logits()
        return {"d_adversarial": self.d_weight * losses.non_saturating_d(real_logits, fake_logits)}

    def g_main(self, ctx: StepContext) -> dict:
        return {"g_adversarial": losses.non_saturating_g(ctx.g_logits()),
                "l1": self.l1_weight * (ctx.fake - ctx.real).abs().mean()}
