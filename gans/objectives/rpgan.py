"""RpGAN + R1 + R2: the regularized relativistic objective of R3GAN (Huang et al. 2024).

The discriminator scores each real image against the fake it is paired with (same index in
the batch), and the generator the reverse (Jolicoeur-Martineau 2018's relativistic pairing);
zero-centred gradient penalties on real (R1) and fake (R2) images, both weighted gamma / 2,
keep the game well-behaved without normalization tricks.

Phases:
    Dmain  every D update     softplus(D(fake) - D(real))
    Dreg   every reg_every    (gamma / 2) (||grad D(real)||^2 + ||grad D(fake)||^2), lazy
    Gmain  every G update     softplus(D(real) - D(fake)), D frozen

`reuse_real_logits`: Gmain takes D(real) from the D update of the same batch, scored before
that update, instead of scoring the reals again with the updated D: one discriminator
forward fewer per generator step. The generator's gradient flows through D(fake) alone, so
D(real) only sets how much each pair weighs.

`final_gamma_scale` < 1: gamma decays with the learning rates, on optim.schedule's curve, to
gamma x final_gamma_scale at the run's end, as R3GAN's training configurations decay gamma
with the learning rate.

`top_k` < 1: Gmain keeps only the pairs whose fakes D scores highest (Sinha et al. 2020;
gans/objectives/base.py, `TopK`); with `pairs: all` those fakes still meet every real.
"""

from __future__ import annotations

from gans.objectives import losses
from gans.objectives.base import (Objective, Phase, StepContext, TopK, along_decay, check,
                                  lazy_weight)
from gans.registry import OBJECTIVES

# "index": real i against fake i (R3GAN); "all": every real against every fake of the batch.
PAIRINGS = ("index", "all")


@OBJECTIVES.register("rpgan")
class RpGAN(Objective):
    def __init__(self, gamma: float = 1.0, r2: bool = True, reg_every: int = 1,
                 pairs: str = "index", reuse_real_logits: bool = False, top_k: float = 1.0,
                 top_k_kimg: float = 4000.0, final_gamma_scale: float = 1.0):
        super().__init__()
        self.top_k = TopK(top_k, top_k_kimg)
        check(gamma >= 0, "gamma", f"must not be negative, got {gamma}")
        check(0 <= final_gamma_scale <= 1, "final_gamma_scale",
              f"must be in [0, 1] (1 keeps gamma constant), got {final_gamma_scale}")
        self.final_gamma_scale = final_gamma_scale
        self.gamma_now = gamma  # at the last Dreg, for the logs
        if final_gamma_scale < 1 and gamma > 0:
            self.scheduled = ("final_gamma_scale",)
        check(reg_every >= 1, "reg_every", f"must be at least 1, got {reg_every}")
        check(pairs in PAIRINGS, "pairs", f"must be one of {', '.join(PAIRINGS)}, got {pairs!r}")
        self.gamma, self.r2, self.reg_every = gamma, r2, reg_every
        self.all_pairs = pairs == "all"
        self.reuse_real_logits = reuse_real_logits
        self.phases = [Phase("Dmain", "discriminator", self.d_main)]
        if gamma > 0:
            self.phases.append(Phase("Dreg", "discriminator", self.d_reg, every=reg_every,
                                     input_grad=("real", "fake") if r2 else ("real",),
                                     double_backward=True))
        self.phases.append(Phase("Gmain", "generator", self.g_main))

    def describe(self) -> str:
        regs = "R1 + R2" if self.r2 else "R1"
        pairing = ", all pairs" if self.all_pairs else ""
        if self.reuse_real_logits:
            pairing += ", real logits of the D update"
        return f"rpgan{pairing}, {regs} gamma {self.gamma:g}" + (
            f" every {self.reg_every}" if self.reg_every > 1 else "") + (
            f", to {self.gamma * self.final_gamma_scale:g} on the schedule"
            if self.scheduled else "") + (
            f", {self.top_k.describe()}" if self.top_k.active else "")

    def logged(self) -> dict:
        return {**self.top_k.logged(), **({"loss/gamma": self.gamma_now} if self.scheduled
                                          else {})}

    def d_main(self, ctx: StepContext) -> dict:
        real_logits, fake_logits = ctx.d_logits()
        return {"d_adversarial": losses.relativistic_d(real_logits, fake_logits, self.all_pairs)}

    def d_reg(self, ctx: StepContext) -> dict:
        real_logits, fake_logits = ctx.d_logits()
        self.gamma_now = self.gamma * along_decay(self.final_gamma_scale, ctx.decay_left)
        weight = lazy_weight(0.5 * self.gamma_now, self.reg_every)
        terms = {"r1": weight * losses.zero_centred_penalty(ctx.d_real, real_logits)}
        if self.r2:
            terms["r2"] = weight * losses.zero_centred_penalty(ctx.d_fake, fake_logits)
        return terms

    def g_main(self, ctx: StepContext) -> dict:
        real_logits = (ctx.d_logits()[0].detach() if self.reuse_real_logits
                       else ctx.g_real_logits())
        fake_logits = ctx.g_logits()
        kept = self.top_k.kept(fake_logits, ctx.kimg)
        if kept is not None:
            fake_logits = fake_logits[kept]
            if not self.all_pairs:
                real_logits = real_logits[kept]
        return {"g_adversarial": losses.relativistic_g(real_logits, fake_logits,
                                                       self.all_pairs)}
