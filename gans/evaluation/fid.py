"""Inception features, their cache for real images, and FID from them.

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

import torch
from torch import nn
from tqdm.auto import tqdm

from gans.cache import cache_dir
from gans.data import Images, image_source
from gans.files import atomic_write
from gans.recipe import INCEPTION_BATCH_SIZE
from gans.evaluation.inception import EXTRACTOR_NAME, InceptionWeights, is_compiled, to_uint8_rgb

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
def extract_features(extractor: nn.Module, images: torch.Tensor,
                     batch_size: int = INCEPTION_BATCH_SIZE,
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
    # The features are of the images alone: the targets of a derived dataset share its source's.
    return {"data": image_source(data), "fingerprint": images.fingerprint(), "split": split,
            "resolution": data.resolution, "channels": data.channels,
            "extractor": EXTRACTOR_NAME, "weights_sha256": weights.sha256, "resize": RESIZE,
            "precision": precision, "num_real": min(num_real, len(images.pixels))}


def real_features(images: Images, key: dict, extractor: nn.Module,
                  batch_size: int = INCEPTION_BATCH_SIZE,
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
