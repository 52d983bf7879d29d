"""Recipe -> DataModule + GANModule + lightning.Trainer -> a run directory.

Run layout: <out>/<recipe name>/version_<n>/ holding recipe.yaml (resolved), checkpoints/
(last.ckpt, best.ckpt by FID when tracked), samples/ (fixed-z grids) and TensorBoard events.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException

from gans.data import GANDataModule
from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder
from gans.module import GANModule
from gans.progress import GeneratorStepsBar
from gans.recipe import Recipe, dump


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints through a temporary file and a rename: a kill during a save leaves the
    previous checkpoint whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        atomic_write(Path(path), lambda f: torch.save(checkpoint, f))


class InterruptCheckpoint(pl.Callback):
    """Ctrl-C or SIGTERM (a cluster's pre-emption): save last.ckpt, say how to resume."""

    def __init__(self, checkpoints: Path):
        self.checkpoints = checkpoints

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return  # a failed step must not overwrite the last good checkpoint
        trainer.save_checkpoint(self.checkpoints / "last.ckpt", weights_only=False)
        if trainer.is_global_zero:
            print(f"\ninterrupted at generator step {pl_module.g_step}; saved "
                  f"{self.checkpoints / 'last.ckpt'}; continue with: gans train --resume "
                  f"{self.checkpoints.parent}", file=sys.stderr)


def build_trainer(recipe: Recipe, logger: TensorBoardLogger) -> pl.Trainer:
    train = recipe.train
    optimizer_steps_per_g_step = train.n_critic + 1
    checkpoints = Path(logger.log_dir) / "checkpoints"
    callbacks = [ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0,
                                 every_n_train_steps=train.checkpoint_every *
                                 optimizer_steps_per_g_step),
                 InterruptCheckpoint(checkpoints)]
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
                          callbacks=callbacks, log_every_n_steps=1, plugins=[AtomicCheckpointIO()],
                          default_root_dir=logger.root_dir, **options)
    except (ValueError, TypeError, RuntimeError, MisconfigurationException) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise GansError(f"recipe section 'trainer' rejected by lightning.Trainer: {message}") \
            from None


def train(recipe: Recipe, out: Path, resume: Optional[Path] = None) -> Path:
    """Train to `train.steps` generator steps and return the run directory.

    With `resume` (a run directory's last.ckpt), the run continues in its own directory:
    step, optimizers, EMA generator, best FID and TensorBoard curves carry on.
    """
    datamodule = GANDataModule(recipe.data, recipe.train.batch_size, recipe.seed)
    datamodule.setup("fit")  # a missing dataset fails here, before any file is written
    if resume is None:
        # An unwritable output fails now, not after an hour of training.
        ensure_writable_folder(out, "pass --out with a writable folder")
        logger = TensorBoardLogger(save_dir=str(out), name=recipe.name, default_hp_metric=False)
    else:
        run_dir = resume.parent.parent
        ensure_writable_folder(run_dir / "checkpoints", "resume a run you can write to")
        logger = TensorBoardLogger(save_dir=str(run_dir.parent.parent), name=run_dir.parent.name,
                                   version=run_dir.name, default_hp_metric=False)
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    module = GANModule(recipe.to_dict())
    trainer = build_trainer(recipe, logger)
    run_dir = Path(logger.log_dir)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(dump(recipe))
    with warnings.catch_warnings():
        # Lightning suggests workers for in-memory tensors; they would only add copies.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Checkpoints after the optimizer steps of a generator step are exactly what resume needs.
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        trainer.fit(module, datamodule=datamodule,
                    ckpt_path=str(resume) if resume is not None else None,
                    weights_only=True)  # our checkpoints hold plain tensors and containers
    # The whole training state, optimizers included: this is the file a resume starts from.
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return run_dir


def resume_point(path: Path) -> Path:
    """A run directory or a checkpoint -> the checkpoint to resume from."""
    path = Path(path)
    checkpoint = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if not checkpoint.is_file():
        raise GansError(f"--resume {path}: no {checkpoint}; pass a run directory "
                        "(runs/<name>/version_<n>) or one of its checkpoints")
    if checkpoint.parent.name != "checkpoints":
        raise GansError(f"--resume {path}: a checkpoint outside a run directory's checkpoints/ "
                        "folder; pass the run directory")
    return checkpoint
