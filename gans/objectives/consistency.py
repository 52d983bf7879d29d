"""RpGAN + R1 + R2 with balanced consistency regularization (bCR, Zhao et al. 2021, "Improved
Consistency Regularization for GANs").

A discriminator that learns a feature of the image's exact placement learns nothing the
generator can use. bCR asks D to score an image and a copy moved by a few pixels alike, on
both the real and the generated images of its update, so its capacity goes to what survives
the move. Unlike DiffAugment, D still scores the originals and G is trained on them: only D's
update sees the moved copies.

Phases (RpGAN's, gans/objectives/rpgan.py, plus one):
    Dmain  every D update     softplus(D(fake) - D(real))
    Dcr    every cr_every     cr_weight (E(D(T(real)) - D(real))^2 + E(D(T(fake)) - D(fake))^2),
                              T a shift by up to cr_shift of the size, scaled by cr_every (lazy)
    Dreg   every reg_every    (gamma / 2) (||grad D(real)||^2 + ||grad D(fake)||^2), lazy
    Gmain  every G update     softplus(D(real) - D(fake)), D frozen
"""

from __future__ import annotations

from gans.objectives.augment import translation
from gans.objectives.base import Phase, StepContext, check, lazy_weight
from gans.objectives.rpgan import RpGAN
from gans.registry import OBJECTIVES


@OBJECTIVES.register("rpgan-bcr")
class RpGANConsistency(RpGAN):
    def __init__(self, gamma: float = 1.0, r2: bool = True, reg_every: int = 1,
                 pairs: str = "index", reuse_real_logits: bool = False, top_k: float = 1.0,
                 top_k_kimg: float = 4000.0, cr_weight: float = 10.0, cr_every: int = 1,
                 cr_shift: float = 0.125, final_gamma_scale: float = 1.0):
        super().__init__(gamma=gamma, r2=r2, reg_every=reg_every, pairs=pairs,
                         reuse_real_logits=reuse_real_logits, top_k=top_k,
                         top_k_kimg=top_k_kimg, final_gamma_scale=final_gamma_scale)
        check(cr_weight >= 0, "cr_weight", f"must not be negative, got {cr_weight}")
        check(cr_every >= 1, "cr_every", f"must be at least 1, got {cr_every}")
        check(0 < cr_shift < 0.5, "cr_shift",
              f"must be a fraction of the image size in (0, 0.5), e.g. 0.125; got {cr_shift}")
        self.cr_weight, self.cr_every, self.cr_shift = cr_weight, cr_every, cr_shift
        if cr_weight > 0:
            self.phases.insert(1, Phase("Dcr", "discriminator", self.d_consistency,
                                        every=cr_every))

    def describe(self) -> str:
        return super().describe() + f", bCR {self.cr_weight:g}" + (
            f" every {self.cr_every}" if self.cr_every > 1 else "")

    def d_consistency(self, ctx: StepContext) -> dict:
        real_logits, fake_logits = ctx.d_logits()
        # The images as D saw them in Dmain; detached, as the penalties' input gradients are
        # not this term's business.
        real_seen, fake_seen = (images.detach() for images in ctx.d_seen)
        moved_real = ctx.discriminator(translation(real_seen, self.cr_shift), ctx.real_labels)
        moved_fake = ctx.discriminator(translation(fake_seen, self.cr_shift), ctx.fake_labels)
        weight = lazy_weight(self.cr_weight, self.cr_every)
        return {"cr_real": weight * (moved_real - real_logits).square().mean(),
                "cr_fake": weight * (moved_fake - fake_logits).square().mean()}
