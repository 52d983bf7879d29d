"""Recipe -> DataModule + GANModule + lightning.Trainer -> a run directory.

Run layout: <out>/<recipe name>/version_<n>/ holding recipe.yaml (resolved), checkpoints/
(last.ckpt, best.ckpt by FID when tracked), samples/ (fixed-z grids) and TensorBoard events.

Several processes (`trainer.devices`, `trainer.num_nodes`) train with `GANDDPStrategy`
(gans/training/ddp.py) unless the
recipe names a strategy; see docs/distributed.md. Every file of a run is written by rank 0, and
the run directory is settled inside `Trainer.fit`, where the ranks can agree on it.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import logging
import shutil
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from gans.errors import GansError
from gans.files import atomic_write, ensure_writable_folder, remove_stale_temps
from gans.hardware import resolve_precision
from gans.recipe import Recipe
from gans.training.callbacks import InterruptCheckpoint, KeptCheckpoints, RunFiles, SampleGrid
from gans.training.clock import Clock
from gans.training.datamodule import GANDataModule
from gans.training.ddp import GANDDPStrategy
from gans.training.module import GANModule, TrainingDiverged
from gans.training.progress import GeneratorStepsBar


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints through a temporary file and a rename: a kill during a save leaves the
    previous checkpoint whole."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        remove_stale_temps(Path(path))  # a run killed mid-save left one: room for this save
        atomic_write(Path(path), lambda f: torch.save(checkpoint, f))


class _LightningNotes(logging.Filter):
    """Lines of Lightning's with nothing in them for a gans user to act on: a tip for its
    hosted logger at every Trainer built without it, and the end of fit as `max_steps=4000
    reached` after a recipe's 2,000 generator steps (Lightning counts both networks' updates;
    the progress bar has already said 2000/2000)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return "litlogger" not in message and "stopped: `max_steps=" not in message


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_LightningNotes())


def build_trainer(recipe: Recipe, logger: TensorBoardLogger) -> pl.Trainer:
    train, clock = recipe.train, Clock.of(recipe)
    # No dirpath: Lightning resolves <run dir>/checkpoints from rank 0's logger and broadcasts
    # it, so every rank agrees even when the ranks were started apart (torchrun, SLURM).
    callbacks = [ModelCheckpoint(save_last=True, save_top_k=0,
                                 every_n_train_steps=clock.global_step_at(train.checkpoint_every)),
                 InterruptCheckpoint(), RunFiles(recipe), SampleGrid(recipe)]
    if train.keep_checkpoints:
        callbacks.append(KeptCheckpoints(recipe))
    if recipe.trainer.get("enable_progress_bar", True):
        callbacks.append(GeneratorStepsBar(refresh_rate=train.log_every))
    if recipe.metrics.fid_every:
        from gans.training.callbacks import FIDTracker

        callbacks.append(FIDTracker(recipe))
        callbacks.append(ModelCheckpoint(filename="best", monitor="fid",
                                         mode="min", save_top_k=1, enable_version_counter=False,
                                         every_n_train_steps=clock.global_step_at(
                                             recipe.metrics.fid_every)))
    options = {"accelerator": "auto", "devices": "auto", "num_sanity_val_steps": 0,
               "enable_model_summary": False, **recipe.trainer,
               "precision": resolve_precision(recipe.trainer)}

    def make(**extra) -> pl.Trainer:
        try:
            # use_distributed_sampler=False: GANDataModule shards the data itself, in an order
            # a resumed run can continue (ResumableSampler).
            return pl.Trainer(max_steps=clock.global_step_at(train.steps), logger=logger,
                              use_distributed_sampler=False,
                              callbacks=list(callbacks), log_every_n_steps=1,
                              plugins=[AtomicCheckpointIO()], default_root_dir=logger.root_dir,
                              **{**options, **extra})
        except (ValueError, TypeError, RuntimeError, MisconfigurationException) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                exc.__class__.__name__
            raise GansError(f"recipe section 'trainer' rejected by lightning.Trainer: {message}") \
                from None

    trainer = make()
    if isinstance(trainer.strategy, DDPStrategy):
        atexit.register(leave_process_group)
    if type(trainer.strategy) is not DDPStrategy:  # one process, or a strategy of its own kind
        return trainer
    if options.get("strategy", "auto") == "auto":
        # Lightning chose plain DDP for several processes (devices x num_nodes > 1). Keep its
        # launch method (a subprocess per device, or fork in a notebook) and sync per phase.
        with _quiet_lightning_info():  # the device summary was printed by the first Trainer
            return make(strategy=GANDDPStrategy(
                start_method=getattr(trainer.strategy, "_start_method", "popen")))
    if not getattr(trainer.strategy, "_ddp_kwargs", {}).get("find_unused_parameters"):
        raise GansError(f"trainer.strategy={options['strategy']!r} wraps G and D in one "
                        "DistributedDataParallel, which fails when each update leaves the other "
                        "network without gradients; leave trainer.strategy unset (gans then uses "
                        "ddp_gan) or set it to ddp_gan or ddp_find_unused_parameters_true")
    return trainer


def leave_process_group() -> None:
    """Destroy the process group, if any, while the interpreter is whole (at exit).

    Lightning does this for NCCL only. A gloo group left to the interpreter's shutdown makes a
    rank abort now and then ("terminate called without an active exception", exit -6) after
    the run has finished; destroying it is local to each rank, so no rank waits for another.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def _quiet_lightning_info():
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def train(recipe: Recipe, out: Path, resume: Optional[Path] = None,
          trust: bool = False) -> Path:
    """Train to `train.steps` generator steps and return the run directory.

    With `resume` (a run directory's last.ckpt), the run continues in its own directory:
    step, optimizers, EMA generator, best FID and TensorBoard curves carry on. `trust`
    (--trust-checkpoint) lets it be a checkpoint that needs a full unpickle.

    With `train.on_nan: rollback`, a NaN or infinity resumes from the last checkpoint with both
    learning rates halved, at most `train.nan_retries` times; then it stops like `stop` does.
    """
    retries = recipe.train.nan_retries if recipe.train.on_nan == "rollback" else 0
    for attempt in range(retries + 1):
        try:
            return _train_once(recipe, out, resume, trust)
        except TrainingDiverged as diverged:
            checkpoint = diverged.checkpoint
            if attempt == retries or checkpoint is None or not checkpoint.is_file():
                raise
            recipe = halve_learning_rates(recipe)
            print(f"gans train: rolling back ({attempt + 1} of {retries}): {diverged}; "
                  f"resuming from {checkpoint} with learning rates G {recipe.optim.generator.lr:g}"
                  f", D {recipe.optim.discriminator.lr:g}", file=sys.stderr)
            resume, trust = checkpoint, False  # our own checkpoint: weights only
    raise AssertionError("unreachable")


def halve_learning_rates(recipe: Recipe) -> Recipe:
    recipe = dataclasses.replace(recipe, optim=copy.deepcopy(recipe.optim))
    recipe.optim.generator.lr /= 2
    recipe.optim.discriminator.lr /= 2
    return recipe


def _train_once(recipe: Recipe, out: Path, resume: Optional[Path], trust: bool) -> Path:
    # The run records the precision it used (recipe.yaml, checkpoints, model card), not `auto`.
    recipe = dataclasses.replace(recipe, trainer={**recipe.trainer,
                                                  "precision": resolve_precision(recipe.trainer)})
    datamodule = GANDataModule(recipe.data, recipe.train.batch_size, recipe.seed,
                               recipe.train.n_critic)
    datamodule.setup("fit")  # a missing dataset fails here, before any file is written
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    # So do networks that the recipe's keys build wrong (width 0, say). Their warnings on the
    # way ("zero-element tensors") would only precede the error; they are shown if all is well.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # The classes the data was read with, not a second look at a folder.
            classes = list(datamodule.images.classes) if recipe.data.conditional else []
            module = GANModule(recipe.to_dict(), class_names=classes or None)
            _dry_run(module.generator, module.discriminator)
        except (TypeError, ValueError, RuntimeError, ArithmeticError, LookupError) as exc:
            # LookupError: BatchNorm of zero channels indexes an empty tensor.
            reason = str(exc).strip().split("\n")[0].split(". ")[0][:120]
            raise GansError(f"the model section builds networks that cannot run "
                            f"({exc.__class__.__name__}: {reason}); check the sizes and types in "
                            f"model.generator and model.discriminator (widths and latent_dim "
                            f"at least 1)") from None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    recipe = module.recipe  # with data.classes filled in: the run's recipe.yaml records them
    if resume is None:
        # An unwritable output fails now, not after an hour of training.
        ensure_writable_folder(out, "pass --out with a writable folder")
        logger = TensorBoardLogger(save_dir=str(out), name=recipe.name, default_hp_metric=False)
    else:
        run_dir = resume.parent.parent
        ensure_writable_folder(run_dir / "checkpoints", "resume a run you can write to")
        logger = TensorBoardLogger(save_dir=str(run_dir.parent.parent), name=run_dir.parent.name,
                                   version=run_dir.name, default_hp_metric=False)
    ensure_room_for_checkpoints(Path(logger.root_dir), module)
    trainer = build_trainer(recipe, logger)
    with warnings.catch_warnings():
        # Lightning suggests workers for in-memory tensors; they would only add copies.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Checkpoints after the optimizer steps of a generator step are exactly what resume needs.
        warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
        # The sampler places every new iterator by the batches trained (ResumableSampler), so a
        # mid-epoch resume continues the data exactly, which Lightning cannot see.
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
        # Lightning 2.6 on torch 2.14 warns about its own pytree use at every run; nothing to act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        try:
            trainer.fit(module, datamodule=datamodule,
                        ckpt_path=str(resume) if resume is not None else None,
                        # Our checkpoints hold plain tensors and containers; others need trust.
                        weights_only=not trust)
        except TrainingDiverged as diverged:
            # Several processes would each roll back on their own: only one process may.
            dirpath = trainer.checkpoint_callback.dirpath
            diverged.checkpoint = Path(dirpath) / "last.ckpt" \
                if dirpath is not None and trainer.world_size == 1 else None
            raise
    # The whole training state, optimizers included: this is the file a resume starts from.
    # Every rank calls it (a collective with a barrier); rank 0 alone writes.
    checkpoints = Path(trainer.checkpoint_callback.dirpath)  # rank 0's, shared in setup
    trainer.save_checkpoint(checkpoints / "last.ckpt", weights_only=False)
    return checkpoints.parent


def checkpoint_bytes(module: GANModule) -> int:
    """About the size of one checkpoint: the weights and buffers, plus Adam's two moments."""
    state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    trained = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    return state + 2 * trained


def ensure_room_for_checkpoints(folder: Path, module: GANModule) -> None:
    """A full disk fails now, not at the first checkpoint an hour in. An atomic save needs the
    new file beside the old one, and best.ckpt is another; 16 MiB more for the events file."""
    folder.mkdir(parents=True, exist_ok=True)
    needed = 3 * checkpoint_bytes(module) + 16 * 2 ** 20
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise GansError(f"only {free / 2 ** 20:.0f} MiB free under {folder}, and the checkpoints "
                        f"of this run need about {needed / 2 ** 20:.0f} MiB; free some space or "
                        "pass --out on another disk")


@torch.no_grad()
def _dry_run(generator: torch.nn.Module, discriminator: torch.nn.Module) -> None:
    """Two latents through G and D: a size that builds but cannot run fails here, not in the
    first training step. Eval mode and a forked random state leave the networks, their running
    statistics and the seeded random streams (noise inputs draw from torch's) as they were."""
    modes = generator.training, discriminator.training
    generator.eval(), discriminator.eval()
    try:
        with torch.random.fork_rng(devices=[]):  # the networks are on the CPU until fit
            if getattr(generator, "translates_images", False):  # pix2pix: input images
                resolution = generator.resolution
                inputs = torch.zeros(2, generator.channels, resolution, resolution)
                discriminator(generator(inputs), inputs)
                return
            n = 2 * getattr(discriminator, "pack", 1)  # a packing D scores whole groups
            labels = torch.zeros(n, dtype=torch.long) if getattr(generator, "num_classes", 0) \
                else None  # any class: a conditional model needs one
            discriminator(generator(torch.randn(n, generator.latent_dim), labels), labels)
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])


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
