"""Recipe -> DataModule + GANModule + lightning.Trainer -> a run directory.

Run layout: <out>/<recipe name>/version_<n>/ holding recipe.yaml (resolved), checkpoints/
(last.ckpt, best.ckpt by FID when tracked), samples/ (fixed-z grids) and TensorBoard events.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from gans.data import GANDataModule
from gans.errors import GansError
from gans.files import ensure_writable_folder
from gans.module import GANModule
from gans.progress import GeneratorStepsBar
from gans.recipe import Recipe, dump


def build_trainer(recipe: Recipe, out: Path, extra_callbacks=()) -> pl.Trainer:
    train = recipe.train
    optimizer_steps_per_g_step = train.n_critic + 1
    logger = TensorBoardLogger(save_dir=str(out), name=recipe.name, default_hp_metric=False)
    checkpoints = Path(logger.log_dir) / "checkpoints"
    callbacks = [ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0,
                                 every_n_train_steps=train.checkpoint_every *
                                 optimizer_steps_per_g_step),
                 *extra_callbacks]
    if recipe.trainer.get("enable_progress_bar", True):
        callbacks.append(GeneratorStepsBar(refresh_rate=train.log_every))
    if recipe.metrics.fid_every:
        from gans.metrics import FIDTracker

        callbacks.append(FIDTracker(recipe))
        callbacks.append(ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="fid",
                                         mode="min", save_top_k=1, enable_version_counter=False,
                                         every_n_train_steps=recipe.metrics.fid_every *
                                         optimizer_steps_per_g_step))
    options = {"accelerator": "auto", "devices": "auto", "num_sanity_val_steps": 0,
               "enable_model_summary": False, **recipe.trainer}
    try:
        return pl.Trainer(max_steps=train.steps * optimizer_steps_per_g_step, logger=logger,
                          callbacks=callbacks, log_every_n_steps=1, default_root_dir=str(out),
                          **options)
    except (ValueError, TypeError, RuntimeError, MisconfigurationException) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise GansError(f"recipe section 'trainer' rejected by lightning.Trainer: {message}") \
            from None


def train(recipe: Recipe, out: Path) -> Path:
    """Train to `train.steps` generator steps and return the run directory."""
    datamodule = GANDataModule(recipe.data, recipe.train.batch_size, recipe.seed)
    datamodule.setup("fit")  # a missing dataset fails here, before any file is written
    # An unwritable output fails now, not after an hour of training.
    ensure_writable_folder(out, "pass --out with a writable folder")
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    module = GANModule(recipe.to_dict())
    trainer = build_trainer(recipe, out)
    run_dir = Path(trainer.logger.log_dir)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(dump(recipe))
    with warnings.catch_warnings():
        # Lightning suggests workers for in-memory tensors; they would only add copies.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Checkpoints after the optimizer steps of a generator step are exactly what resume needs.
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        trainer.fit(module, datamodule=datamodule)
    # The whole training state, optimizers included: this is the file a resume starts from.
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return run_dir
