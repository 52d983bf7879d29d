"""Inception features, their cache for real images, and FID tracked during training.

Every metric works on 2048-d Inception pool features. Real features are cached per
(dataset, fingerprint of the decoded images, split, resolution, channels, extractor weights,
number of images), so a changed dataset or extractor never reuses a stale entry. FID itself is
torchmetrics' FrechetInceptionDistance fed with those features.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from torch import nn
from tqdm.auto import tqdm

from gans.cache import cache_dir
from gans.data import Images, load_images
from gans.files import atomic_write
from gans.evaluation.inception import EXTRACTOR_NAME, InceptionWeights, at_precision, compiled, \
    is_compiled, make_extractor, resolve_inception_weights, to_uint8_rgb

NUM_FEATURES = 2048
RESIZE = "bilinear to 299x299 as TensorFlow 1.x (torch-fidelity), inside the extractor"


@dataclass(frozen=True)
class Protocol:
    """What a figure means; recorded beside every figure."""

    extractor: str
    weights_sha256: str
    num_fake: int
    num_real: int
    reference: str
    resolution: int
    resize: str = RESIZE
    precision: str = "fp32"  # of the Inception network: bf16 features move FID a little

    def describe(self) -> str:
        return (f"{self.extractor} (weights sha256 {self.weights_sha256[:12]}, "
                f"{self.precision}), "
                f"{self.num_fake} generated vs {self.num_real} real images of {self.reference} "
                f"at {self.resolution}px, resize {self.resize}")

    def as_dict(self) -> dict:
        return asdict(self)


class FeaturesAsInput(nn.Module):
    """Lets torchmetrics' metrics take precomputed features as their 'images'."""

    num_features = NUM_FEATURES

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def feature_fid():
    """torchmetrics FID over precomputed features; the real statistics survive `reset()`."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=FeaturesAsInput(), reset_real_features=False)


@torch.no_grad()
def extract_features(extractor: nn.Module, images: torch.Tensor, batch_size: int = 50,
                     desc: Optional[str] = None) -> torch.Tensor:
    """Features (N, 2048) float32 on the CPU of uint8 or [-1, 1] images, in batches."""
    device = next(extractor.parameters()).device
    batches = images.split(batch_size)
    if desc:
        batches = tqdm(batches, desc=desc, unit="batch", leave=False)
    with torch.no_grad():
        return torch.cat([features_of(extractor, to_uint8_rgb(b.to(device)), batch_size).cpu()
                          for b in batches])


def features_of(extractor: nn.Module, pixels: torch.Tensor, batch_size: int) -> torch.Tensor:
    """float32 features of one batch of uint8 RGB images, at most `batch_size` of them."""
    count = len(pixels)
    if is_compiled(extractor) and count < batch_size:
        # One static shape: a short batch would compile a second graph.
        pixels = torch.cat([pixels, pixels[-1:].expand(batch_size - count, *pixels.shape[1:])])
    return extractor(pixels)[:count].float()


def subset(images: Images, n: int, seed: int = 0) -> torch.Tensor:
    """A fixed random subset: folders sorted by class would bias a leading slice."""
    if n >= len(images.pixels):
        return images.pixels
    order = torch.randperm(len(images.pixels), generator=torch.Generator().manual_seed(seed))
    return images.pixels[order[:n].sort().values]


def real_key(data, split: str, images: Images, weights: InceptionWeights, num_real: int,
             precision: str = "fp32") -> dict:
    return {"data": data.name, "fingerprint": images.fingerprint(), "split": split,
            "resolution": data.resolution, "channels": data.channels,
            "extractor": EXTRACTOR_NAME, "weights_sha256": weights.sha256, "resize": RESIZE,
            "precision": precision, "num_real": min(num_real, len(images.pixels))}


def real_features(images: Images, key: dict, extractor: nn.Module, batch_size: int = 50,
                  use_cache: bool = True) -> tuple[torch.Tensor, Path]:
    """Features of the reference images, from the cache or computed and cached atomically."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    entry = cache_dir() / "features" / f"{digest}.pt"
    if use_cache and entry.exists():
        try:
            saved = torch.load(entry, map_location="cpu", weights_only=True)
            if saved.get("key") == key:
                return saved["features"], entry
            warnings.warn(f"feature cache entry {entry} belongs to another key; recomputing",
                          stacklevel=2)
        except Exception as exc:  # a truncated or foreign file: recompute rather than fail
            warnings.warn(f"feature cache entry {entry} unreadable ({exc.__class__.__name__}); "
                          "recomputing", stacklevel=2)
    pixels = subset(images, key["num_real"])
    features = extract_features(extractor, pixels, batch_size,
                                desc=f"Inception features of {len(pixels)} real images "
                                     "(computed once, then cached)")
    atomic_write(entry, lambda f: torch.save({"key": key, "features": features}, f))
    return features, entry


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

    def setup(self, trainer, pl_module, stage: str) -> None:
        metrics, data = self.recipe.metrics, self.recipe.data
        weights = resolve_inception_weights(metrics.inception_weights)
        self.extractor = at_precision(make_extractor(weights),
                                      metrics.inception_precision).to(pl_module.device)
        if metrics.inception_compile:
            self.extractor = compiled(self.extractor)
        self.fid = feature_fid().to(pl_module.device)
        images = load_images(data, split=metrics.fid_reference_split)
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
        n_critic = self.recipe.train.n_critic
        every = self.recipe.metrics.fid_every
        if trainer.global_step % (n_critic + 1) == 0 and pl_module.g_step % every == 0:
            pl_module.record({"fid": self.evaluate(pl_module, trainer.world_size,
                                                   trainer.global_rank)})

    @torch.no_grad()
    def evaluate(self, pl_module, world_size: int = 1, rank: int = 0) -> torch.Tensor:
        """FID of `fid_num_fake` images from fixed latents, split across ranks."""
        metrics = self.recipe.metrics
        # The same latents at every evaluation: changes in FID then come from the generator.
        z = torch.randn(metrics.fid_num_fake, pl_module.generator.latent_dim,
                        generator=torch.Generator().manual_seed(self.recipe.seed + 1))
        for chunk in z[rank::world_size].split(metrics.fid_batch_size):
            images = pl_module.generate(chunk.to(pl_module.device))
            features = features_of(self.extractor, to_uint8_rgb(images), metrics.fid_batch_size)
            self.fid.update(features, real=False)
        value = self.fid.compute()
        self.fid.reset()  # fake states only: the metric keeps its real statistics
        return value

    def state_dict(self) -> dict:
        return {"protocol": self.protocol.as_dict() if self.protocol else None}
