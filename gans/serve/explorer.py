"""The explorer's operations on tensors: load and cache generators, make images one seed at a
time, style-mix with a chosen layer range, walk between seeds, find nearest training images,
translate drawings with image-to-image (pix2pix) models.

Nothing here knows HTTP; app.py validates requests and calls these.

Every image in a grid is its own seed, made as `gans sample CKPT --seed S --num 1` makes it,
so a pinned image, its download, a walk through it and the same seed in another grid all show
the same pixels. Generation runs under one process-wide lock: StyleGAN-lite's noise is drawn
from the global torch RNG (seeded per image), which two threads would otherwise interleave,
and on a CPU two concurrent forward passes are no faster than one after the other.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from gans.serve.backend import (CLASS_NAMES, DEFAULT_DISTANCE, GansError, Latent, ProjectOptions,
                                as_signed, as_unit, atomic_write, cache_dir, class_labels,
                                class_names, generate, interpolation_frames, load_classifier,
                                load_generator, load_images, load_target, make_distance, make_info,
                                mixing_layers, project, save_pil, sketch_input, source_sha256,
                                style_mixing_grid, supports_style_mixing, supports_truncation,
                                to_classifier_input, to_pil, toward_class, translate, variations)

GENERATION_LOCK = threading.Lock()


class Cancelled(Exception):
    """Raised inside a background job when its cancel was asked for."""


@dataclass
class Model:
    path: Path
    generator: torch.nn.Module
    recipe: object
    weights: str  # 'ema' or 'raw'
    names: tuple  # class names, () when unconditional

    @property
    def sha256(self) -> str:
        return source_sha256(self.path)

    @property
    def translates(self) -> bool:
        """An image-to-image model (pix2pix): images from drawings, no latent."""
        return bool(getattr(self.generator, "translates_images", False))

    def describe(self) -> dict:
        g = self.generator
        style = supports_style_mixing(g)
        data = self.recipe.data
        return {"generator": type(g).__name__, "recipe": self.recipe.name,
                "translates": self.translates,
                "latent_dim": None if self.translates else g.latent_dim,
                "resolution": data.resolution,
                "channels": data.channels, "classes": list(self.names),
                "weights": self.weights, "truncation": supports_truncation(g),
                "style_mixing": style, "num_ws": g.num_ws if style else None,
                "default_layers": list(mixing_layers(g)) if style else None,
                "dataset": data.name}

    def provenance(self, **fields) -> dict:
        """make_info's arguments, as `gans sample` passes them."""
        return {"checkpoint": self.path, "recipe": self.recipe.to_dict(),
                "checkpoint_sha256": self.sha256, "weights": self.weights,
                **{k: v for k, v in fields.items() if v is not None}}


class ModelCache:
    """Loaded generators by (path, weights wanted), reloaded when the file's size or mtime
    changes: a live run rewrites last.ckpt (atomically, by rename) every few hundred steps."""

    def __init__(self, capacity: int = 6):
        self.capacity = capacity
        self._models: dict = {}
        self._loading: dict = {}
        self._lock = threading.Lock()

    def get(self, path: Path, use_ema: bool = True) -> Model:
        key = (str(path), use_ema)
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        # A page opening asks for a grid and the pinned images at once: one load, not five.
        with loading:
            try:
                stat = path.stat()
            except OSError:
                raise GansError(f"{path.name} is gone (deleted or renamed since it was listed); "
                                "pick a checkpoint from /api/runs") from None
            stamp = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                hit = self._models.get(key)
                if hit is not None and hit[0] == stamp:
                    self._models[key] = self._models.pop(key)  # most recently used last
                    return hit[1]
            # Weights-only: a checkpoint needing a full unpickle is refused, as in gans sample.
            generator, recipe, weights = load_generator(path, use_ema=use_ema, trust=False)
            generator.requires_grad_(False)
            model = Model(path, generator, recipe, weights, tuple(class_names(recipe.data)))
            with self._lock:
                self._models[key] = (stamp, model)
                while len(self._models) > self.capacity:
                    self._models.pop(next(iter(self._models)))
            return model


# ----------------------------------------------------------------------------- images


def png_bytes(image: torch.Tensor, info: dict, nrow: Optional[int] = None) -> bytes:
    """An image (or a batch, as a grid) in [-1, 1] as PNG bytes with provenance chunks."""
    buffer = io.BytesIO()
    save_pil(to_pil(as_unit(image), nrow), buffer, info)
    return buffer.getvalue()


@dataclass(frozen=True)
class Cell:
    seed: int
    label: Optional[int]  # class index for a conditional model


def grid_cells(model: Model, seed: int, num: int, label: Optional[int]) -> list:
    """Seeds seed..seed+num-1; a conditional model without a chosen class shows every class in
    turn, as `gans sample` does."""
    labels = class_labels(len(model.names), num, label)
    return [Cell(seed + i, None if labels is None else int(labels[i])) for i in range(num)]


def render_cells(model: Model, cells: list, psi: Optional[float] = None,
                 truncate_z: Optional[float] = None) -> list:
    """One image per cell, each exactly `gans sample --seed S --num 1 [--class C]`."""
    images = []
    with GENERATION_LOCK:
        for cell in cells:
            labels = class_labels(len(model.names), 1, cell.label)
            images.append(generate(model.generator, 1, cell.seed, truncation=psi,
                                   truncate_z=truncate_z, labels=labels)[0])
    return images


def cell_png(model: Model, cell: Cell, image: torch.Tensor, psi=None, truncate_z=None) -> bytes:
    info = make_info("single", **model.provenance(
        seeds=cell.seed, index=0, truncation=psi, truncate_z=truncate_z,
        **{"class": None if cell.label is None else model.names[cell.label]}))
    return png_bytes(image, info)


def translate_drawing(model: Model, drawing: bytes, seed: int) -> tuple:
    """(the model's input, uint8 (C, R, R); its image in [-1, 1]) for a drawing's PNG bytes:
    the drawing is normalised as `gans sample --sketch` does it, and the dropout noise comes
    from `seed`, so the same drawing and seed give the same image there and here."""
    data = model.recipe.data
    condition = sketch_input(drawing, data.resolution, data.channels)
    with GENERATION_LOCK:
        return condition[0], translate(model.generator, condition, seed)[0]


@torch.no_grad()
def style_mix(model: Model, rows: list, cols: list, layers: tuple,
              psi: Optional[float] = None, label: Optional[int] = None) -> torch.Tensor:
    """`gans sample --style-mix`'s grid with row and column seeds of their own and the layer
    range taken from the columns."""
    with GENERATION_LOCK:
        return style_mixing_grid(model.generator, rows, psi, label, column_seeds=cols,
                                 layers=tuple(layers))


class _Watched:
    """A generator seen through a counter: each frame interpolation_frames makes ticks once,
    which reports progress and is where a cancelled job stops."""

    def __init__(self, module, tick: Callable[[], None]):
        self._module, self._tick = module, tick

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if name in ("synthesis", "forward"):
            @functools.wraps(value)
            def watched(*args, **kwargs):
                self._tick()
                return value(*args, **kwargs)
            return watched
        return value

    def __call__(self, *args, **kwargs):
        self._tick()
        return self._module(*args, **kwargs)


def walk_frames(model: Model, seeds: list, frames: int, psi=None, truncate_z=None,
                label: Optional[int] = None, progress: Callable[[float], None] = lambda p: None,
                cancelled: Callable[[], bool] = lambda: False) -> torch.Tensor:
    """gans sample --interpolate's frames, reporting progress and stoppable between frames."""
    total, done = len(seeds) * frames, [0]

    def tick():
        if cancelled():
            raise Cancelled()
        progress(done[0] / total)
        done[0] += 1

    while not GENERATION_LOCK.acquire(timeout=0.2):  # wait for the lock, but not when cancelled
        if cancelled():
            raise Cancelled()
    try:
        return interpolation_frames(_Watched(model.generator, tick), seeds, frames, psi,
                                    truncate_z, label=label)
    finally:
        GENERATION_LOCK.release()


# ----------------------------------------------------------------------------- memorisation

SPACES = ("pixels", "classifier")


@dataclass
class NearestIndex:
    """The training images of a recipe's data section and their features in one space."""

    space: str
    pixels: torch.Tensor  # uint8 (N, C, H, W), the images as the model saw them
    labels: Optional[torch.Tensor]
    features: torch.Tensor  # float16 (N, D)
    norms: torch.Tensor  # float32 (N,) squared norms of the features
    typical: float  # median distance of a training image to its nearest other training image
    seconds: float
    description: str
    label_names: tuple = ()  # the dataset's class names, conditional model or not
    extract: Callable = field(repr=False, default=None)

    def search(self, image: torch.Tensor, k: int) -> list:
        """[(index, distance)] of the k training images nearest to `image` ([-1, 1])."""
        # Clamped as the saved PNG is: StyleGAN-lite's output is not squashed into [-1, 1].
        query = self.extract(image[None].float().clamp(-1, 1))
        indices, distances = _nearest(self, query, k)
        return [(int(i), float(d)) for i, d in zip(indices[0], distances[0])]


def _nearest(index: NearestIndex, queries: torch.Tensor, k: int, exclude=None):
    """Indices and L2 distances of the k nearest rows, in chunks so memory stays small."""
    best_d = torch.full((len(queries), 0), float("inf"))
    best_i = torch.zeros((len(queries), 0), dtype=torch.long)
    q_norm = (queries ** 2).sum(1, keepdim=True)
    for start in range(0, len(index.features), 8192):
        chunk = index.features[start:start + 8192].float()
        d2 = q_norm + index.norms[start:start + 8192][None] - 2 * queries @ chunk.T
        if exclude is not None:  # a training image is not its own neighbour
            rows = torch.arange(len(queries))
            cols = exclude - start
            inside = (cols >= 0) & (cols < len(chunk))
            d2[rows[inside], cols[inside]] = float("inf")
        d = torch.cat([best_d, d2.clamp_min(0).sqrt()], 1)
        i = torch.cat([best_i, torch.arange(start, start + len(chunk)).expand(len(queries), -1)], 1)
        top = d.topk(min(k, d.size(1)), dim=1, largest=False)
        best_d, best_i = top.values, i.gather(1, top.indices)
    return best_i, best_d


def _extractor(space: str):
    if space == "pixels":
        return lambda images: images.float().flatten(1)
    classifier = load_classifier("cpu")

    @torch.no_grad()
    def features(images):
        return torch.cat([classifier.features(to_classifier_input(chunk.float())).flatten(1)
                          for chunk in images.split(512)])
    return features


class NearestIndexes:
    """One index per (data section, space), built on first use and kept in memory; the
    classifier features are also cached on disk under the gans cache folder, keyed by the
    images' fingerprint, so a restart takes seconds."""

    def __init__(self):
        self._indexes: dict = {}
        self._lock = threading.Lock()

    def get(self, model: Model, space: str) -> NearestIndex:
        data = model.recipe.data
        key = (json.dumps(model.recipe.to_dict()["data"], sort_keys=True, default=str), space)
        with self._lock:  # one build at a time: two would only halve each other's speed
            if key not in self._indexes:
                self._indexes[key] = self._build(data, space)
            return self._indexes[key]

    def _build(self, data, space: str) -> NearestIndex:
        started = time.perf_counter()
        try:
            images = load_images(data)
        except GansError as exc:
            raise GansError(f"the memorisation check needs the training images, which cannot "
                            f"be read here: {exc}") from None
        extract = _extractor(space)
        disk = None
        if space != "pixels":
            digest = hashlib.sha256(f"{images.fingerprint()}-{space}".encode()).hexdigest()[:20]
            disk = cache_dir() / "serve" / f"nearest-{digest}.pt"
        features = None
        if disk is not None and disk.is_file():
            try:
                features = torch.load(disk, map_location="cpu", weights_only=True)
            except Exception:  # a damaged cache file is rebuilt
                features = None
        if features is None or len(features) != len(images.pixels):
            features = torch.cat([extract(as_signed(chunk)) for chunk in images.pixels.split(4096)])
            features = features.half()
            if disk is not None:
                atomic_write(disk, lambda f: torch.save(features, f))
        index = NearestIndex(space, images.pixels, images.labels, features,
                             (features.float() ** 2).sum(1), 0.0, 0.0, images.description,
                             label_names=tuple(CLASS_NAMES.get(data.name, ())), extract=extract)
        # The yardstick a distance is read against: how close training images are to each
        # other. A generated image far closer to one training image than that is a copy.
        probe = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:256]
        if len(features) > 1:
            _, d = _nearest(index, features[probe].float(), 1, exclude=probe)
            index.typical = float(d.reshape(-1).median())
        index.seconds = round(time.perf_counter() - started, 2)
        return index


def training_png(index: NearestIndex, i: int) -> bytes:
    return png_bytes(as_signed(index.pixels[i]), {})


# ----------------------------------------------------------------------------- image prompts


def projection_target(model: Model, image: bytes) -> torch.Tensor:
    """An uploaded image file's bytes as the model sees it (gans project's decoding and
    checks)."""
    data = model.recipe.data
    return load_target(image, data.resolution, data.channels)


def project_image(model: Model, target: torch.Tensor, space: str, steps: int,
                  label: Optional[int], find_class: bool,
                  progress: Callable[[int, torch.Tensor], None], cancelled: Callable[[], bool]):
    """The projection of `target` into `model` (gans project's loop), with
    `progress(step, image)` at each snapshot; raises Cancelled when asked to stop. No
    generation lock: projection draws its noise from its own generator, and renders without
    StyleGAN-lite's per-pixel noise."""

    def on_step(step, images):
        if cancelled():
            raise Cancelled()
        progress(step, images[:1])

    (found,) = project(model.generator, target, ProjectOptions(space=space, steps=steps,
                                                               frames=12),
                       label=label, find_class=find_class,
                       distance=make_distance(DEFAULT_DISTANCE), on_step=on_step)
    return found


def around_projection(model: Model, found, kind: str, num: int = 8, spread: float = 0.5,
                      seed: int = 0, seeds: Optional[list] = None,
                      label: Optional[int] = None) -> tuple:
    """(images, nrow) from a projection: `vary` (its image and `num` around it), `mix` (its
    styles with the fine styles of `seeds`), `toward` (moved toward class `label`)."""
    latent = Latent(found.space, found.latent, found.label, {})
    g = model.generator
    with GENERATION_LOCK:  # style mixing draws the seeds' w, as the Style mixing panel does
        if kind == "vary":
            images = variations(g, latent, num, spread, seed)
            return images, len(images)
        if kind == "toward":
            images = toward_class(g, latent, label, frames=8)
            return images, len(images)
        if latent.space == "z":
            raise GansError("mix: a z projection has no per-layer styles; project with space w")
        ws = g.broadcast(latent.tensor) if latent.space == "w" else latent.tensor
        mix_label = latent.label if latent.label is not None else label
        if model.names and mix_label is None:
            raise GansError(f"mix: this checkpoint is class-conditional; pick the seeds' class "
                            f"(one of: {', '.join(model.names)})")
        images = style_mixing_grid(g, [0], column_seeds=seeds, label=mix_label, row_ws=ws)
        return images, len(seeds) + 1
