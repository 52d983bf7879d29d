"""Lightning's tqdm bar, counting generator steps of `train.steps` instead of batches of an epoch.

Epochs mean little for GAN training (the budget is generator steps), so the bar spans the whole
run and survives epoch boundaries and resumes.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import TQDMProgressBar


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
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        keep = ("loss/generator", "loss/discriminator", "images_per_sec", "fid")
        return {k.split("/")[-1] if k.startswith("loss/") else k: v
                for k, v in metrics.items() if k in keep}
