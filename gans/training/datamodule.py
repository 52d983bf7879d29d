"""The DataModule that batches a dataset's uint8 tensors for training, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gans.data import Images, load_images
from gans.errors import GansError
from gans.recipe import Recipe, as_recipe
from gans.training.clock import Clock


class ResumableSampler(DistributedSampler):
    """DistributedSampler's order in any number of processes: every pass over the data a
    permutation seeded by seed + pass, of which each rank takes its 1/N share, cut to whole
    batches. Each iterator starts where `batches_done()` batches of training left that order
    and gives one epoch's worth of batches, into the next pass if need be, so the data a run
    sees follows from the batches it has trained alone. Lightning's epochs only mark where it
    starts a new iterator: a resumed run whose checkpoint Lightning counts as part way into an
    epoch (or as one done) sees the data the uninterrupted run would have."""

    def __init__(self, size: int, batch_size: int, num_replicas: int, rank: int, seed: int,
                 batches_done: Callable[[], int] = lambda: 0):
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=True,
                         seed=seed)
        self.batch_size = batch_size
        self.batches_done = batches_done

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.batch_size  # a last partial batch is dropped

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        pass  # the pass follows from the batches trained, not from Lightning's epoch count

    def __iter__(self):
        # One epoch's worth of batches from wherever training stands, across passes if need be.
        passes, within = divmod(self.batches_done(), self.batches_per_epoch)
        indices, skip = [], within * self.batch_size
        while len(indices) < len(self):
            self.epoch = passes
            indices += list(super().__iter__())[skip:len(self)]
            passes, skip = passes + 1, 0
        return iter(indices[:len(self)])


class GANDataModule(pl.LightningDataModule):
    """Shuffled uint8 batches of the training images; the step normalises them.

    Each of N processes draws `batch_size` images a step from its own 1/N of the data, in an
    order fixed by the recipe seed and the batches trained (`ResumableSampler`), so a resumed
    run goes on where the checkpoint was written: `batches_done` is the number of batches
    trained, read from the step counter each time Lightning starts an iterator.
    """

    def __init__(self, data, batch_size: int, seed: int = 0, n_critic: int = 1):
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.clock = Clock(n_critic, batch_size)
        self.images: Optional[Images] = None

    @classmethod
    def from_recipe(cls, recipe: Union[Recipe, dict, str, Path],
                    overrides: Optional[list] = None) -> "GANDataModule":
        """The data module of a recipe (a `Recipe`, a mapping or a YAML file), with `overrides`
        ("a.b=c") applied: its data section, batch size, seed and n_critic."""
        recipe = as_recipe(recipe, overrides)
        return cls(recipe.data, recipe.train.batch_size, recipe.seed, recipe.train.n_critic)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.images is None:
            self.images = load_images(self.data)
        if self.data.conditional and self.images.labels is None:
            raise GansError(f"data.conditional needs labels, and {self.images.description} has "
                            "none; set data.conditional: false")
        # Inside Trainer.fit the world size is known: every rank needs a whole batch of its shard.
        world = self.trainer.world_size if self.trainer is not None else 1
        if len(self.images.pixels) < self.batch_size * world:
            needed = (f"train.batch_size={self.batch_size}" if world == 1 else
                      f"train.batch_size={self.batch_size} x {world} processes")
            raise GansError(f"{self.images.description} has {len(self.images.pixels)} images, "
                            f"fewer than {needed}; lower train.batch_size or add images")

    def batches_done(self) -> int:
        """Batches trained so far: one per discriminator update, and Lightning's global step
        counts both networks' updates. Restored before the loader is made."""
        return 0 if self.trainer is None else self.clock.d_steps(self.trainer.global_step)

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = ResumableSampler(len(self.images.pixels), self.batch_size,
                                   num_replicas=trainer.world_size if trainer else 1,
                                   rank=trainer.global_rank if trainer else 0, seed=self.seed,
                                   batches_done=self.batches_done)
        tensors = (self.images.pixels,)
        if self.data.conditional:
            tensors += (torch.as_tensor(self.images.labels, dtype=torch.long),)
        if self.images.conditions is not None:  # paired data: each target's input image
            tensors += (self.images.conditions,)
        return DataLoader(TensorDataset(*tensors), batch_size=self.batch_size,
                          sampler=sampler, drop_last=True, num_workers=self.data.num_workers,
                          persistent_workers=self.data.num_workers > 0)
