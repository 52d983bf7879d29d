"""Lightning's tqdm bar, counting generator steps of `train.steps` instead of batches of an epoch.

Epochs mean little for GAN training (the budget is generator steps), so the bar spans the whole
run and survives epoch boundaries and resumes. When `trainer.max_time` will stop the run first
(a time budget, where train.steps is often unbounded), the bar ends at the step the clock is
projected to stop at, so its percentage and remaining time are those of the clock.
"""

from __future__ import annotations

from typing import Optional

from pytorch_lightning.callbacks import TQDMProgressBar

from gans.training.module import run_clock


def projected_last_step(steps: int, step: int, steps_per_sec: Optional[float],
                        time_remaining: Optional[float]) -> int:
    """The step the run will end at: train.steps, or sooner where the clock runs out first at
    the pace so far."""
    if not steps_per_sec or time_remaining is None:
        return steps
    return min(steps, step + max(1, round(steps_per_sec * time_remaining)))


class GeneratorStepsBar(TQDMProgressBar):
    def on_train_start(self, trainer, pl_module) -> None:
        self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(total=pl_module.recipe.train.steps)
        self.train_progress_bar.initial = pl_module.g_step
        self.train_progress_bar.n = pl_module.g_step
        self.train_progress_bar.set_description("generator steps")

    def on_train_epoch_start(self, trainer, *_) -> None:
        pass

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        bar = self.train_progress_bar
        step = pl_module.g_step
        if bar is not None and (step % self.refresh_rate == 0 or step >= bar.total):
            bar.n = step
            bar.total = self.last_step(trainer, pl_module.recipe.train.steps, step)
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def last_step(self, trainer, steps: int, step: int) -> int:
        timer = run_clock(trainer)
        elapsed = self.train_progress_bar.format_dict["elapsed"]
        steps_this_session = step - self.train_progress_bar.initial
        pace = steps_this_session / elapsed if elapsed > 0 and steps_this_session > 0 else None
        return projected_last_step(steps, step, pace,
                                   timer.time_remaining() if timer is not None else None)

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        keep = ("loss/generator", "loss/discriminator", "images_per_sec", "fid")
        return {k.split("/")[-1] if k.startswith("loss/") else k: v
                for k, v in metrics.items() if k in keep}
