"""Callbacks for the work around the algorithm: sample grids, FID tracking, the run
directory's recipe, and a checkpoint on interruption. The LightningModule keeps the algorithm."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn

from gans.evaluation.fid import Protocol, feature_fid, features_of, real_features, real_key
from gans.evaluation.inception import EXTRACTOR_NAME, inception, resolve_inception_weights, \
    to_uint8_rgb
from gans.data import as_signed, load_images
from gans.files import atomic_write
from gans.recipe import Recipe, dump


# A paired model's grid: this many fixed test pairs, as three rows (input, output, target).
PAIRED_GRID_COLUMNS = 16


class SampleGrid(pl.Callback):
    """A grid from fixed latents every `train.sample_every` generator steps and at the end:
    into samples/ and TensorBoard (rank zero only). For paired data, fixed test pairs instead:
    a row of inputs, a row of outputs, a row of targets."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.z: Optional[torch.Tensor] = None
        self.labels: Optional[torch.Tensor] = None
        self.pairs: Optional[tuple] = None  # (inputs, targets), uint8

    def setup(self, trainer, pl_module, stage: str) -> None:
        if pl_module.paired:
            self.pairs = fixed_pairs(self.recipe.data, PAIRED_GRID_COLUMNS)
            return
        grid = self.recipe.train.sample_grid
        seeded = torch.Generator().manual_seed(self.recipe.seed)
        self.z = torch.randn(grid, pl_module.generator.latent_dim, generator=seeded)
        # Every class in turn: the grid shows all classes alike.
        num_classes = pl_module.num_classes
        self.labels = torch.arange(grid) % num_classes if num_classes else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if pl_module.clock.at_g_boundary(trainer.global_step) and \
                pl_module.g_step % self.recipe.train.sample_every == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.g_step % self.recipe.train.sample_every != 0:
            self.write(trainer, pl_module)

    def write(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        from torchvision.utils import make_grid

        from gans.sampling.provenance import make_info, save_image

        if self.pairs is not None:
            inputs, targets = self.pairs
            outputs = pl_module.translate(inputs, seed=self.recipe.seed).float().cpu()
            images = torch.cat([as_signed(inputs), outputs, as_signed(targets)])
            nrow = len(inputs)
        else:
            labels = None if self.labels is None else self.labels.to(pl_module.device)
            images = pl_module.generate(self.z.to(pl_module.device), labels=labels).float().cpu()
            nrow = int(len(images) ** 0.5)
        grid = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1))
        logger, step = pl_module.logger, pl_module.g_step
        # Only a run directory gets files: without a logger Lightning's log_dir is the cwd.
        # (trainer.log_dir would also hang under DDP: it broadcasts, and only rank 0 is here.)
        if logger is not None and logger.log_dir:
            out = Path(logger.log_dir) / "samples"
            out.mkdir(parents=True, exist_ok=True)
            # No checkpoint hash yet: the run directory and step name the weights instead.
            info = make_info("training-sample", recipe=self.recipe.to_dict(),
                             run=Path(logger.log_dir).resolve(), step=step,
                             seeds=self.recipe.seed,
                             weights="raw" if pl_module.g_ema is None else "ema")
            save_image(grid, out / f"step_{step:07d}.png", info)
        if logger is not None and hasattr(logger.experiment, "add_image"):
            logger.experiment.add_image("samples", grid, step)


def fixed_pairs(data, n: int) -> tuple:
    """`n` (input, target) pairs of the test split (where the data has one), spread over it:
    what sample grids show at every step."""
    images = load_images(data, split="test")
    index = torch.linspace(0, len(images.pixels) - 1, min(n, len(images.pixels))).long()
    return images.conditions[index], images.pixels[index]


class FIDTracker(pl.Callback):
    """Every `metrics.fid_every` generator steps: FID of the sampling generator, logged as `fid`.

    A callback rather than part of the module, so the Inception network never enters the
    checkpoints. Under several processes only rank 0 holds the real features and each rank
    generates its share of fakes; torchmetrics sums the states over ranks in `compute`, which
    then equals a one-process evaluation.
    """

    def __init__(self, recipe):
        self.recipe = recipe
        self.extractor: Optional[nn.Module] = None
        self.fid = None
        self.protocol: Optional[Protocol] = None
        self.conditions: Optional[torch.Tensor] = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        metrics, data = self.recipe.metrics, self.recipe.data
        weights = resolve_inception_weights(metrics.inception_weights)
        self.extractor = inception(weights, metrics.inception_precision,
                                   metrics.inception_compile, pl_module.device)
        self.fid = feature_fid().to(pl_module.device)
        images = load_images(data, split=metrics.fid_reference_split)
        # A paired model translates the reference split's inputs: its outputs are compared
        # with those inputs' own targets.
        self.conditions = images.conditions
        key = real_key(data, metrics.fid_reference_split, images, weights, metrics.fid_num_real,
                       metrics.inception_precision)
        if trainer.is_global_zero:
            features, _ = real_features(images, key, self.extractor, metrics.fid_batch_size)
            self.fid.update(features.to(pl_module.device), real=True)
        self.protocol = Protocol(f"FID {EXTRACTOR_NAME}", weights.sha256, metrics.fid_num_fake,
                                 key["num_real"], images.description, data.resolution,
                                 precision=metrics.inception_precision)

    def on_train_start(self, trainer, pl_module) -> None:
        experiment = getattr(trainer.logger, "experiment", None)
        if trainer.is_global_zero and hasattr(experiment, "add_text"):
            experiment.add_text("fid/protocol", self.protocol.describe(), pl_module.g_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        every = self.recipe.metrics.fid_every
        if pl_module.clock.at_g_boundary(trainer.global_step) and pl_module.g_step % every == 0:
            pl_module.record({"fid": self.evaluate(pl_module, trainer.world_size,
                                                   trainer.global_rank)})

    @torch.no_grad()
    def evaluate(self, pl_module, world_size: int = 1, rank: int = 0) -> torch.Tensor:
        """FID of `fid_num_fake` images from fixed latents, split across ranks."""
        metrics = self.recipe.metrics
        if self.conditions is not None:
            inputs = self.conditions[:metrics.fid_num_fake][rank::world_size]
            chunks = [pl_module.translate(chunk, seed=self.recipe.seed + 1)
                      for chunk in inputs.split(metrics.fid_batch_size)]
        else:
            # The same latents at every evaluation: changes in FID then come from the generator.
            z = torch.randn(metrics.fid_num_fake, pl_module.generator.latent_dim,
                            generator=torch.Generator().manual_seed(self.recipe.seed + 1))
            chunks = (pl_module.generate(chunk.to(pl_module.device))
                      for chunk in z[rank::world_size].split(metrics.fid_batch_size))
        for images in chunks:
            features = features_of(self.extractor, to_uint8_rgb(images), metrics.fid_batch_size)
            self.fid.update(features, real=False)
        value = self.fid.compute()
        self.fid.reset()  # fake states only: the metric keeps its real statistics
        return value

    def state_dict(self) -> dict:
        return {"protocol": self.protocol.as_dict() if self.protocol else None}


class RunFiles(pl.Callback):
    """The resolved recipe into the run directory, by rank 0 once the ranks agree on it.

    Before `fit` a process launched by Lightning does not yet know its rank, so nothing is
    written there; in `setup` the rank is known and rank 0's logger names the directory.
    """

    def __init__(self, recipe: Recipe):
        self.recipe = recipe

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.is_global_zero:
            run_dir = Path(trainer.logger.log_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(run_dir / "recipe.yaml", lambda f: f.write(dump(self.recipe).encode()))


class KeptCheckpoints(pl.Callback):
    """`train.keep_checkpoints`: a checkpoint at every `train.checkpoint_every` generator steps,
    named by its step and never overwritten, beside last.ckpt.

    Not a second ModelCheckpoint(save_top_k=-1): its file names can only carry Lightning's
    counter, which counts both networks' optimizer steps (n_critic + 1 per generator step), and
    every other count in a run is in generator steps."""

    def __init__(self, recipe: Recipe):
        self.every = recipe.train.checkpoint_every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if not pl_module.clock.at_g_boundary(step) or pl_module.g_step % self.every:
            return
        checkpoints = Path(trainer.checkpoint_callback.dirpath)  # rank 0's, shared in setup
        # Whole checkpoints, each resumable; saying so also keeps Lightning from printing that
        # it chose this, into the progress bar, at every interval.
        trainer.save_checkpoint(checkpoints / f"step-{pl_module.g_step:07d}.ckpt",
                                weights_only=False)


class InterruptCheckpoint(pl.Callback):
    """Ctrl-C or SIGTERM (a cluster's pre-emption): save last.ckpt, say how to resume."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            return  # a failed step must not overwrite the last good checkpoint
        if trainer.checkpoint_callback.dirpath is None:
            return  # stopped before setup: nothing trained yet
        checkpoints = Path(trainer.checkpoint_callback.dirpath)  # rank 0's, shared in setup
        trainer.save_checkpoint(checkpoints / "last.ckpt", weights_only=False)
        if trainer.is_global_zero:
            print(f"\ninterrupted at generator step {pl_module.g_step}; saved "
                  f"{checkpoints / 'last.ckpt'}; continue with: gans train --resume "
                  f"{checkpoints.parent}", file=sys.stderr)
