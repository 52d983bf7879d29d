"""FID during training: torchmetrics' FrechetInceptionDistance against cached real statistics.

Real statistics are the metric's own summed states (sum of features, sum of outer products,
count), cached per (data fingerprint, split, resolution, extractor hash, number of images), so a
changed dataset or extractor never reuses a stale entry. Under several processes only rank 0
holds the real states and each rank generates its share of fakes; torchmetrics sums the states
over ranks in `compute`, which then equals a one-process evaluation.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from tqdm.auto import tqdm

from gans.cache import cache_dir
from gans.data import Images, load_images
from gans.inception import EXTRACTOR_NAME, InceptionWeights, make_fid, resolve_inception_weights, \
    to_fid_input

REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


@dataclass(frozen=True)
class Protocol:
    """What an FID figure means; recorded beside every figure."""

    extractor: str
    weights_sha256: str
    num_fake: int
    num_real: int
    reference: str
    resolution: int
    resize: str = "bilinear to 299x299 inside the extractor (torch-fidelity)"

    def describe(self) -> str:
        return (f"FID {self.extractor} (weights sha256 {self.weights_sha256[:12]}), "
                f"{self.num_fake} generated vs {self.num_real} real images of {self.reference} "
                f"at {self.resolution}px, resize {self.resize}")


def subset(images: Images, n: int, seed: int = 0) -> torch.Tensor:
    """A fixed random subset: folders sorted by class would bias a leading slice."""
    if n >= len(images.pixels):
        return images.pixels
    order = torch.randperm(len(images.pixels), generator=torch.Generator().manual_seed(seed))
    return images.pixels[order[:n].sort().values]


def load_real_statistics(fid, images: Images, key: dict, batch_size: int,
                         use_cache: bool = True) -> Path:
    """Fill `fid`'s real states from the cache, or compute and cache them; returns the entry."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    entry = cache_dir() / "fid-stats" / f"{digest}.pt"
    if use_cache and entry.exists():
        try:
            saved = torch.load(entry, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                for name in REAL_STATES:
                    getattr(fid, name).copy_(saved[name])
                return entry
        except Exception as exc:  # a truncated or foreign file: recompute rather than fail
            warnings.warn(f"FID cache entry {entry} unreadable ({exc.__class__.__name__}); "
                          "recomputing", stacklevel=2)
    pixels = subset(images, key["num_real"])
    device = fid.real_features_sum.device
    batches = pixels.split(batch_size)
    for batch in tqdm(batches, desc=f"FID reference statistics ({len(pixels)} real images, "
                      "computed once and cached)", unit="batch", leave=False):
        fid.update(to_fid_input(batch.to(device).float() / 127.5 - 1.0), real=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(f".tmp{os.getpid()}")
    torch.save({"key": key, **{n: getattr(fid, n).cpu() for n in REAL_STATES}}, tmp)
    os.replace(tmp, entry)
    return entry


def real_key(data, split: str, images: Images, weights: InceptionWeights, num_real: int) -> dict:
    return {"data": data.name, "fingerprint": images.fingerprint(), "split": split,
            "resolution": data.resolution, "channels": data.channels,
            "extractor": EXTRACTOR_NAME, "weights_sha256": weights.sha256,
            "num_real": min(num_real, len(images.pixels))}


class FIDTracker(pl.Callback):
    """Every `metrics.fid_every` generator steps: FID of the sampling generator, logged as `fid`.

    Held by a callback rather than the module so the Inception network never enters the
    checkpoints.
    """

    def __init__(self, recipe):
        self.recipe = recipe
        self.fid = None
        self.protocol: Optional[Protocol] = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        metrics, data = self.recipe.metrics, self.recipe.data
        weights = resolve_inception_weights(metrics.inception_weights)
        self.fid = make_fid(weights).to(pl_module.device)
        images = load_images(data, split=metrics.fid_reference_split)
        key = real_key(data, metrics.fid_reference_split, images, weights, metrics.fid_num_real)
        if trainer.is_global_zero:
            load_real_statistics(self.fid, images, key, metrics.fid_batch_size)
        self.protocol = Protocol(EXTRACTOR_NAME, weights.sha256, metrics.fid_num_fake,
                                 key["num_real"], f"{images.description}", data.resolution)

    def on_train_start(self, trainer, pl_module) -> None:
        experiment = getattr(trainer.logger, "experiment", None)
        if trainer.is_global_zero and hasattr(experiment, "add_text"):
            experiment.add_text("fid/protocol", self.protocol.describe(), pl_module.g_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        n_critic = self.recipe.train.n_critic
        every = self.recipe.metrics.fid_every
        if trainer.global_step % (n_critic + 1) == 0 and pl_module.g_step % every == 0:
            pl_module.record({"fid": self.evaluate(pl_module, trainer.world_size,
                                                   trainer.global_rank)})

    @torch.no_grad()
    def evaluate(self, pl_module, world_size: int = 1, rank: int = 0) -> torch.Tensor:
        """FID of `fid_num_fake` images from fixed latents, split across ranks."""
        metrics = self.recipe.metrics
        share = range(rank, metrics.fid_num_fake, world_size)
        latent = pl_module.generator.latent_dim
        # The same latents at every evaluation: changes in FID then come from the generator.
        z_all = torch.randn(metrics.fid_num_fake, latent,
                            generator=torch.Generator().manual_seed(self.recipe.seed + 1))
        z = z_all[list(share)]
        for chunk in z.split(metrics.fid_batch_size):
            images = pl_module.generate(chunk.to(pl_module.device))
            self.fid.update(to_fid_input(images.float()), real=False)
        value = self.fid.compute()
        self.fid.reset()  # fake states only: the metric keeps its real statistics
        return value

    def state_dict(self) -> dict:
        return {"protocol": self.protocol.__dict__ if self.protocol else None}
