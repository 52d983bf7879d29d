"""The one schedule of a run: generator steps, discriminator steps, images seen, kimg.

Lightning's `global_step` counts optimizer steps of both networks. One batch is one
discriminator update, and every `n_critic`-th batch also updates the generator, so a generator
step is `n_critic + 1` optimizer steps: `global_step = g_steps * (n_critic + 1)` at every
generator-step boundary. Everything that needs a count (the step, resume, logging, FID
tracking, checkpoints, bench budgets, model cards) asks a `Clock`, never Lightning's counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    n_critic: int = 1  # discriminator updates (one batch each) per generator update
    batch_size: int = 64  # images per discriminator update, per process
    world_size: int = 1  # processes, each with its own batch

    @classmethod
    def of(cls, recipe, world_size: int = 1) -> "Clock":
        return cls(recipe.train.n_critic, recipe.train.batch_size, world_size)

    @property
    def optimizer_steps_per_g_step(self) -> int:
        return self.n_critic + 1

    def g_steps(self, global_step: int) -> int:
        """Generator updates done once Lightning's counter reads `global_step`."""
        return global_step // self.optimizer_steps_per_g_step

    def d_steps(self, global_step: int) -> int:
        """Discriminator updates (batches) done, read at the start of a batch."""
        return global_step - self.g_steps(global_step)

    def updates_generator(self, global_step: int) -> bool:
        """Whether the batch that starts at `global_step` also updates the generator."""
        return global_step % self.optimizer_steps_per_g_step == self.n_critic - 1

    def at_g_boundary(self, global_step: int) -> bool:
        """Whether a generator step has just completed (or nothing has started)."""
        return global_step % self.optimizer_steps_per_g_step == 0

    def global_step_at(self, g_steps: int) -> int:
        """Lightning's counter after `g_steps` generator steps (max_steps, checkpoint intervals)."""
        return g_steps * self.optimizer_steps_per_g_step

    def images_at(self, g_steps: int) -> int:
        """Real images shown to the discriminator after `g_steps` generator steps, summed over
        all processes."""
        return g_steps * self.n_critic * self.batch_size * self.world_size

    def images(self, global_step: int) -> int:
        """Real images shown to the discriminator so far, summed over all processes."""
        return self.d_steps(global_step) * self.batch_size * self.world_size

    def kimg(self, global_step: int) -> float:
        return self.images(global_step) / 1000.0

    def kimg_at(self, g_steps: int) -> float:
        return self.images_at(g_steps) / 1000.0

    def g_steps_for_kimg(self, kimg: float) -> int:
        """The generator steps that show at least `kimg` thousand images (at least one)."""
        return max(1, math.ceil(kimg * 1000 / (self.n_critic * self.batch_size * self.world_size)))

    def g_steps_near_kimg(self, kimg: float) -> int:
        """The generator steps that show the nearest to `kimg` thousand images (at least one):
        for a cadence ("FID every K kimg"), where a budget rounds up to show at least K."""
        return max(1, round(kimg * 1000 / (self.n_critic * self.batch_size * self.world_size)))
