"""gans from Python: every command-line verb as a function, and a handle on a loaded generator.

The command line (gans/cli.py) is a layer of argument handling over these functions; a
notebook or a script calls them directly (docs/api.md walks through them):

    G = gans.load("runs/quickstart/version_0/checkpoints/last.ckpt")
    images = G.sample(16, seed=0)              # (16, C, H, W) floats in [-1, 1]

Checkpoints load under the command line's rules: weights-only, and a recipe that names code
outside gans is refused unless `trust=True` says the file comes from a trusted source.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import nn

from gans import registry
from gans.data import as_unit, class_names
from gans.errors import GansError
from gans.recipe import INCEPTION_BATCH_SIZE, Recipe, apply_overrides, as_recipe, read_yaml
from gans.sampling import generate as _gen
from gans.sampling.checkpoint import checkpoint_recipe, load_generator, read_checkpoint

PathLike = Union[str, Path]
RecipeLike = Union[Recipe, dict, str, Path]


# ----------------------------------------------------------------------------- generators


class LoadedGenerator:
    """A generator read from a checkpoint (.ckpt) or an exported file (.safetensors), in eval
    mode, with the recipe that built it. Call it like StyleGAN2-ADA's `G(z, c)`, or let it draw
    the latents from a seed: the same seed gives the images `gans sample --seed` writes.

    Images come as CPU float tensors (N, C, H, W) in [-1, 1], or as PIL images with
    `pil=True`. For a class-conditional model pick a class by name or index with `class_name`
    (``"sneaker"``, ``"ankle-boot"``, ``7``), or give one label per image with `labels`;
    without either the images go through every class in turn.
    """

    def __init__(self, network: nn.Module, recipe: Recipe, weights: str, path: Path,
                 trust: bool = False):
        self.network = network
        self._trust = trust  # the rule the file was loaded under, for its discriminator too
        self.recipe = recipe
        self.weights = weights  # "ema" or "raw": which of the file's generators this is
        self.path = path

    def __repr__(self) -> str:
        classes = f", {len(self.classes)} classes" if self.classes else ""
        return (f"LoadedGenerator({self.path}, {type(self.network).__name__}, "
                f"{self.weights} weights, {self.resolution}px{classes})")

    @property
    def latent_dim(self) -> int:
        self._needs_latent()
        return self.network.latent_dim

    @property
    def translates(self) -> bool:
        """Whether this is an image-to-image model (pix2pix): images from sketches, no latent."""
        return bool(getattr(self.network, "translates_images", False))

    @property
    def classes(self) -> tuple:
        """The class names of a class-conditional model, in label order; () otherwise."""
        return class_names(self.recipe.data)

    @property
    def resolution(self) -> int:
        return self.recipe.data.resolution

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: Union[str, torch.device]) -> "LoadedGenerator":
        """Move the network (e.g. to "cuda"); latents are still drawn on the CPU, so a seed
        gives the same images on every device."""
        self.network.to(device)
        return self

    def __call__(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None,
                 **kwargs) -> torch.Tensor:
        """The network itself: images from latents `z` (N, latent_dim) and, for a conditional
        model, `labels` (N,); keyword arguments such as `truncation_psi` go to the network."""
        return self.network(z, labels, **kwargs)

    # ------------------------------------------------------------------ sketches

    def sketch_input(self, sketch) -> torch.Tensor:
        """A drawing (a file path, or a PIL image of any mode and size) as this model's input:
        uint8 (1, C, R, R), dark lines on white, thinned, at the model's resolution."""
        self._needs_sketch()
        try:
            return _gen.sketch_input(sketch, self.resolution, self.recipe.data.channels)
        except GansError as exc:
            raise GansError(f"--sketch {exc}") from None

    def translate(self, sketches, seed: int = 0, *, pil: bool = False):
        """Images from drawings (one, or a list: paths or PIL images), or from inputs already
        in the model's form (a uint8 tensor (N, C, R, R)). The dropout noise comes from `seed`.
        Returns floats (N, C, R, R) in [-1, 1], or a list of PIL images."""
        self._needs_sketch()
        if torch.is_tensor(sketches):
            inputs = sketches
        else:
            items = sketches if isinstance(sketches, (list, tuple)) else [sketches]
            inputs = torch.cat([self.sketch_input(item) for item in items])
        images = _gen.translate(self.network, inputs.to(self.device), seed).float().cpu()
        return _to_pil_list(images) if pil else images

    def save_translations(self, sketch: PathLike, out: Optional[PathLike] = None,
                          seed: int = 0) -> list:
        """`gans sample --sketch`: the image of a drawing at `out` (default: beside it, as
        NAME-output.png), or for a folder of drawings one image each in `out` (default:
        FOLDER-outputs/). Each file carries its provenance. Returns the paths written."""
        from gans.files import ensure_writable_folder
        from gans.paired import sketch_files
        from gans.sampling.provenance import make_info, save_image

        self._needs_sketch()
        sketch = Path(sketch)
        files = sketch_files(sketch)
        if sketch.is_dir():
            folder = Path(out) if out is not None else sketch.parent / f"{sketch.name}-outputs"
            targets = [folder / f"{f.stem}.png" for f in files]
        else:
            target = Path(out) if out is not None else sketch.with_name(f"{sketch.stem}-output.png")
            if target.suffix.lower() != ".png":
                raise GansError(f"--out {target}: give a .png file for the image of one sketch")
            folder, targets = target.parent, [target]
        ensure_writable_folder(folder, "pass --out in a writable folder")
        provenance = self._provenance(None, None, None)
        for path, target in zip(files, targets):
            image = self.translate(path, seed)
            save_image(as_unit(image), target,
                       make_info("sketch", sketch=path.name, seeds=seed, **provenance))
        return targets

    def _needs_sketch(self) -> None:
        if not self.translates:
            raise GansError(f"--sketch: {self.path.name} holds a {type(self.network).__name__}, "
                            "which makes images from noise, not sketches; pass a checkpoint "
                            "trained on paired data (recipes/pix2pix/)")

    def _needs_latent(self) -> None:
        if self.translates:
            raise GansError(f"{self.path.name} holds an image-to-image model: it makes images "
                            "from sketches, not from seeds; pass --sketch DRAWING.png "
                            "(Python: .translate(...))")

    # ------------------------------------------------------------------ in memory

    def sample(self, n: int = 1, seed: int = 0, *, labels: Optional[Sequence[int]] = None,
               class_name: Union[str, int, None] = None, truncation: Optional[float] = None,
               truncate_z: Optional[float] = None, pil: bool = False):
        """`n` images from `seed`. `truncation` psi pulls styles toward the average (models
        with a mapping network, e.g. stylegan-lite); `truncate_z` redraws |z| > T (any model).
        Returns a float tensor (n, C, H, W) in [-1, 1], or a list of PIL images."""
        self._needs_latent()
        images = _gen.generate(self.network, _positive(n, "n"), seed, truncation=truncation,
                               truncate_z=truncate_z,
                               labels=self._labels(n, labels, class_name, None))
        return _to_pil_list(images) if pil else images

    def grid(self, n: int = 64, seed: int = 0, *, nrow: Optional[int] = None,
             class_name: Union[str, int, None] = None, per_class: Optional[int] = None,
             truncation: Optional[float] = None, truncate_z: Optional[float] = None):
        """A PIL image of `n` samples in a grid of `nrow` columns (default: square), as
        `gans sample --out grid.png` writes it; `per_class=K`: one row of K per class."""
        n, nrow = self._grid_shape(n, nrow, per_class)
        images = _gen.generate(self.network, n, seed, truncation=truncation,
                               truncate_z=truncate_z,
                               labels=self._labels(n, None, class_name, per_class))
        return _to_pil_grid(images, nrow or _square(n))

    def style_mix(self, seeds: Sequence[int], *, truncation: Optional[float] = None,
                  class_name: Union[str, int, None] = None, pil: bool = True):
        """The style-mixing grid of `seeds` (models with per-layer styles, e.g.
        stylegan-lite): each seed's own image along the top row and the left column; the cell
        at (i, j) has row seed i's coarse styles and column seed j's fine ones. A PIL image,
        or with `pil=False` the (len(seeds) + 1)^2 images as a tensor, row by row."""
        self._needs_latent()
        images = _gen.style_mixing_grid(self.network, list(seeds), truncation,
                                        label=self._one_class(class_name, "--style-mix"))
        return _to_pil_grid(images, len(seeds) + 1) if pil else images

    def interpolate(self, seeds: Sequence[int], frames: int = 24, *,
                    truncation: Optional[float] = None, truncate_z: Optional[float] = None,
                    class_name: Union[str, int, None] = None, pil: bool = False):
        """A looping walk through `seeds`: `frames` images from each seed to the next (in w
        where the model has a mapping network, else spherically in z). A tensor
        (len(seeds) * frames, C, H, W) in [-1, 1], or a list of PIL images."""
        self._needs_latent()
        images = _gen.interpolation_frames(
            self.network, list(seeds), frames, truncation, truncate_z,
            label=self._one_class(class_name, "--interpolate"))
        return _to_pil_list(images) if pil else images

    # ------------------------------------------------------------------ to files

    def save(self, out: PathLike, n: int = 64, seed: int = 0, *, nrow: Optional[int] = None,
             class_name: Union[str, int, None] = None, per_class: Optional[int] = None,
             truncation: Optional[float] = None, truncate_z: Optional[float] = None) -> list:
        """`gans sample`: a grid at `out` (.png or .jpg), or one PNG per image when `out` ends
        with a slash or is a folder, each carrying its provenance (`gans inspect` reads it).
        Returns the paths written."""
        n, nrow = self._grid_shape(n, nrow, per_class)
        labels = self._labels(n, None, class_name, per_class)
        provenance = self._provenance(truncation, truncate_z, class_name)
        if per_class is not None:
            provenance["classes"] = "one row per class: " + ", ".join(self.classes)
        images = _gen.generate(self.network, n, seed, truncation=truncation,
                               truncate_z=truncate_z, labels=labels)
        return _gen.write_samples(images, str(out), nrow=nrow, seed=seed, provenance=provenance)

    def save_style_mix(self, out: PathLike, seeds: Sequence[int], *,
                       truncation: Optional[float] = None,
                       class_name: Union[str, int, None] = None) -> Path:
        """`gans sample --style-mix`: the style-mixing grid of `seeds` as one image file."""
        if str(out).endswith(("/", os.sep)) or Path(out).is_dir():
            raise GansError("--style-mix writes one grid: pass --out FILE.png")
        grid = self.style_mix(seeds, truncation=truncation, class_name=class_name, pil=False)
        provenance = self._provenance(truncation, None, class_name)
        return _gen.write_samples(grid, str(out), nrow=len(seeds) + 1, seed=list(seeds),
                                  provenance=provenance, kind="style-mix")[0]

    def save_interpolation(self, out: PathLike, seeds: Sequence[int], frames: int = 24,
                           fps: float = 12.0, *, truncation: Optional[float] = None,
                           truncate_z: Optional[float] = None,
                           class_name: Union[str, int, None] = None) -> Path:
        """`gans sample --interpolate`: the walk as .gif, .mp4 (needs PyAV) or .png (one row
        per pair of seeds)."""
        images = self.interpolate(seeds, frames, truncation=truncation, truncate_z=truncate_z,
                                  class_name=class_name)
        provenance = {**self._provenance(truncation, truncate_z, class_name),
                      "seeds": list(seeds), "frames": frames}
        return _gen.write_animation(images, str(out), fps, frames, provenance)

    # ------------------------------------------------------------------ image prompts

    def project(self, images, *, space: str = "z", steps: int = 300, seed: int = 0,
                class_name: Union[str, int, None] = None, distance: Optional[str] = None,
                on_step=None) -> list:
        """Find the latents whose images are closest to `images`: image files (paths), or a
        tensor (N, C, H, W) in [-1, 1] at the model's size. `space`: "z" (any model), "w" or
        "w+" (style models). A class-conditional model needs `class_name` (a class, or "best"
        to try every class and keep the closest). Returns a `Projection` per image: `.latent`,
        `.image`, `.target`, `.psnr`, `.label`, `.history` (the distances per step)."""
        from gans.sampling import project as _project

        targets = self._targets(images)
        options = _project.ProjectOptions(space=space, steps=steps, seed=seed,
                                          distance=distance or _project.DEFAULT_DISTANCE)
        find = self.classes and str(class_name).lower() == "best"
        label = None if find else self._class_index(class_name, "--class")
        measure = _project.make_distance(options.distance, _project.DistanceContext(
            self.path if self.path.suffix.lower() == ".ckpt" else None, self._trust))
        return _project.project(self.network, targets, options, label=label,
                                find_class=bool(find), distance=measure, on_step=on_step)

    def save_projections(self, images: Sequence[PathLike], out: PathLike, *, space: str = "z",
                         steps: int = 300, seed: int = 0,
                         class_name: Union[str, int, None] = None,
                         distance: Optional[str] = None) -> list:
        """`gans project`: per image file, into folder `out`: NAME-target.png (the image as the
        model sees it), NAME-projection.png, NAME-latent.npz (`gans sample --latent` reads it),
        NAME-progress.png (snapshots of the search, then the target) and NAME-distances.json
        (every step's distances and PSNR). Returns [{what: path, "psnr_db": ...}] per image."""
        from gans.files import ensure_writable_folder
        from gans.sampling import project as _project

        paths = [Path(p) for p in images]
        if not paths:
            raise GansError("gans project needs at least one IMAGE")
        ensure_writable_folder(Path(out), "pass --out in a writable folder")
        self._targets(paths)  # every image is checked before any is projected
        provenance = {**self._provenance(None, None, None), "distance": distance
                      or _project.DEFAULT_DISTANCE, "seed": seed, "class_names": self.classes}
        written, stems = [], set()
        for path in paths:
            stem = path.stem if path.stem not in stems else f"{path.stem}-{len(stems)}"
            stems.add(stem)
            (result,) = self.project([path], space=space, steps=steps, seed=seed,
                                     class_name=class_name, distance=distance)
            files = _project.write_projection(result, Path(out), stem, self.network,
                                              {**provenance, "image": path.name})
            written.append({**files, "psnr_db": round(result.psnr, 2),
                            "class": self.classes[result.label] if result.label is not None
                            else None})
        return written

    def latent(self, path: PathLike):
        """A latent file written by `gans project`, checked against this generator (its
        space and size): a `Latent` with `.space`, `.tensor`, `.label`."""
        from gans.sampling.project import read_latent

        return read_latent(Path(path), self.network)

    def vary(self, latent, n: int = 8, spread: float = 0.5, seed: int = 0) -> torch.Tensor:
        """The latent's image, then `n` images of latents around it (`spread`: typical steps
        of the latent space); a tensor (n + 1, C, H, W) in [-1, 1]."""
        from gans.sampling.project import variations

        return variations(self.network, self._as_latent(latent), n, spread, seed)

    def toward(self, latent, class_name: Union[str, int], frames: int = 8) -> torch.Tensor:
        """A class-conditional model's latent moved toward another class (w, w+: `frames`
        steps; z: its own class, then the new one)."""
        from gans.sampling.project import toward_class

        return toward_class(self.network, self._as_latent(latent),
                            self._class_index(class_name, "--toward"), frames)

    def save_latent_images(self, out: PathLike, latent: PathLike, *, variations: int = 0,
                           spread: float = 0.5, seed: int = 0,
                           toward: Union[str, int, None] = None,
                           style_mix: Optional[Sequence[int]] = None,
                           class_name: Union[str, int, None] = None) -> Path:
        """`gans sample --latent FILE`: its image; with `variations` N, a row of it and N
        images around it; with `toward` CLASS, its walk toward that class; with `style_mix`
        seeds, a grid of its coarse styles with each seed's fine ones (w and w+ latents; the
        seeds' class is the latent's, or `class_name` where the latent has none)."""
        from gans.sampling.project import latent_image, latent_ws, variations as around

        if sum(bool(x) for x in (variations, toward is not None, style_mix)) > 1:
            raise GansError("--variations, --toward and --style-mix are three kinds of output "
                            "from a --latent; pick one")
        found = self.latent(latent)
        provenance = {**self._provenance(None, None, None), "latent": Path(latent).name,
                      "space": found.space}
        if found.label is not None:
            provenance["class"] = self.classes[found.label]
        if str(out).endswith(("/", os.sep)) or Path(out).is_dir():
            raise GansError("--latent writes one image or grid: pass --out FILE.png")
        if style_mix:
            rows = latent_ws(self.network, found)
            label = found.label if found.label is not None else \
                self._one_class(class_name, "--style-mix")
            grid = _gen.style_mixing_grid(self.network, [0], column_seeds=list(style_mix),
                                          label=label, row_ws=rows)
            return _gen.write_samples(grid, str(out), nrow=len(style_mix) + 1,
                                      seed=list(style_mix), provenance=provenance,
                                      kind="latent-style-mix")[0]
        if toward is not None:
            images = self.toward(found, toward)
            provenance["toward"] = self.classes[self._class_index(toward, "--toward")]
            kind = "latent-toward"
        elif variations:
            images = around(self.network, found, variations, spread, seed)
            provenance["spread"] = spread
            kind = "latent-variations"
        else:
            images, kind = latent_image(self.network, found), "latent"
        return _gen.write_samples(images, str(out), nrow=len(images), seed=seed,
                                  provenance=provenance, kind=kind)[0]

    def _as_latent(self, latent):
        from gans.sampling.project import Latent, Projection

        if isinstance(latent, Latent):
            return latent
        if isinstance(latent, Projection):
            return Latent(latent.space, latent.latent, latent.label, {})
        return self.latent(latent)

    def _targets(self, images) -> torch.Tensor:
        from gans.sampling.project import load_target

        if isinstance(images, torch.Tensor):
            size = (self.recipe.data.channels, self.resolution, self.resolution)
            if images.dim() != 4 or tuple(images.shape[1:]) != size:
                raise GansError(f"images: expected a tensor (N, {size[0]}, {size[1]}, {size[2]}) "
                                f"in [-1, 1], got {tuple(images.shape)}")
            return images.float()
        if isinstance(images, (str, Path)):
            images = [images]
        return torch.cat([load_target(Path(p), self.resolution, self.recipe.data.channels)
                          for p in images])

    # ------------------------------------------------------------------ helpers

    def _class_index(self, class_name: Union[str, int, None], flag: str) -> Optional[int]:
        if class_name is None:
            return None
        if not self.classes:
            raise GansError(f"{flag}: this checkpoint's model is not class-conditional (trained "
                            "without data.conditional: true); drop the flag")
        return _gen.resolve_class(str(class_name), self.classes)

    def _one_class(self, class_name: Union[str, int, None], kind: str) -> Optional[int]:
        """The class of a style-mixing grid or a walk: one, and required when conditional."""
        if self.classes and class_name is None:
            raise GansError(f"this checkpoint is class-conditional: add --class to {kind} "
                            f"(one of: {', '.join(self.classes)})")
        return self._class_index(class_name, "--class")

    def _labels(self, n: int, labels, class_name, per_class) -> Optional[torch.Tensor]:
        if labels is not None:
            if not self.classes:
                raise GansError("labels: this checkpoint's model is not class-conditional "
                                "(trained without data.conditional: true); drop labels")
            if class_name is not None:
                raise GansError("labels and class_name both pick classes; pass one")
            labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
            if len(labels) != n or bool(((labels < 0) | (labels >= len(self.classes))).any()):
                raise GansError(f"labels: expected {n} class indices in 0..{len(self.classes) - 1}"
                                f", got {labels.tolist()}")
            return labels
        if per_class is not None:
            if class_name is not None:
                raise GansError("--class and --per-class are two kinds of grid; pick one")
            if not self.classes:
                raise GansError("--per-class: this checkpoint's model is not class-conditional "
                                "(trained without data.conditional: true); drop the flag")
        index = self._class_index(class_name, "--class")
        return _gen.class_labels(len(self.classes), n, index, per_class)

    def _grid_shape(self, n: int, nrow: Optional[int], per_class: Optional[int]) -> tuple:
        self._needs_latent()
        if per_class is not None:
            _positive(per_class, "per_class")
            return per_class * len(self.classes), per_class  # one row per class
        if nrow is not None:
            _positive(nrow, "nrow")
        return _positive(n, "n"), nrow

    def _provenance(self, truncation, truncate_z, class_name) -> dict:
        """What every image written from this generator carries (make_info's arguments)."""
        from gans.sampling.export import source_sha256

        provenance = {"checkpoint": self.path, "recipe": self.recipe.to_dict(),
                      "checkpoint_sha256": source_sha256(self.path), "weights": self.weights,
                      "truncation": truncation, "truncate_z": truncate_z}
        index = self._class_index(class_name, "--class")
        if index is not None:
            provenance["class"] = self.classes[index]
        return provenance


def load(path: PathLike, *, use_ema: bool = True, trust: bool = False,
         device: Union[str, torch.device, None] = None) -> LoadedGenerator:
    """The generator of a checkpoint written by `gans train` (or any `Trainer` training a
    `GANModule`) or of a .safetensors written by `gans export`. The EMA copy where the file
    has one (`use_ema=False`: the trained generator; `.weights` says which was loaded).
    `trust=True` allows a full unpickle and recipes that name code outside gans: only for
    files from a source you trust. Raises `CheckpointError` for a file it cannot load."""
    network, recipe, weights = load_generator(Path(path), use_ema=use_ema, trust=trust)
    handle = LoadedGenerator(network, recipe, weights, Path(path), trust)
    return handle.to(device) if device is not None else handle


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise GansError(f"{name} must be at least 1, got {value}")
    return value


def _square(n: int) -> int:
    return max(1, int(n ** 0.5))


def _to_pil_grid(images: torch.Tensor, nrow: int):
    from gans.sampling.provenance import to_pil

    return to_pil(as_unit(images), nrow=nrow)


def _to_pil_list(images: torch.Tensor) -> list:
    from gans.sampling.provenance import to_pil

    return [to_pil(as_unit(image)) for image in images]


def project(checkpoint: PathLike, images: Sequence[PathLike], out: PathLike, *,
            space: str = "z", steps: int = 300, seed: int = 0,
            class_name: Union[str, int, None] = None, distance: Optional[str] = None,
            use_ema: bool = True, trust: bool = False) -> list:
    """`gans project`: `load(checkpoint).save_projections(images, out, ...)`."""
    return load(checkpoint, use_ema=use_ema, trust=trust).save_projections(
        images, out, space=space, steps=steps, seed=seed, class_name=class_name,
        distance=distance)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True, repr=False)
class Run:
    """A run directory (runs/<name>/version_<n>/) and the recipe it trained."""

    run_dir: Path
    recipe: Recipe

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r})"

    @classmethod
    def open(cls, run_dir: PathLike, trust: bool = False) -> "Run":
        """A finished or interrupted run, from its directory; its recipe.yaml is checked like
        a checkpoint's recipe (names outside gans need `trust`)."""
        run_dir = Path(run_dir)
        path = run_dir / "recipe.yaml"
        if not path.is_file():
            raise GansError(f"{run_dir} is not a gans run directory (no recipe.yaml); pass "
                            "runs/<name>/version_<n>")
        return cls(run_dir, checkpoint_recipe(read_yaml(path), path, trust))

    @property
    def last_checkpoint(self) -> Path:
        """The whole training state at the end (or at the interruption): what resume reads."""
        return self.run_dir / "checkpoints" / "last.ckpt"

    @property
    def best_checkpoint(self) -> Optional[Path]:
        """The checkpoint of the lowest FID tracked during training; None without FID
        tracking (metrics.fid_every: 0)."""
        path = self.run_dir / "checkpoints" / "best.ckpt"
        return path if path.is_file() else None

    def fid_curve(self) -> list:
        """[[generator step, kimg, training seconds, FID]] of the FID tracked during
        training, from the run's TensorBoard log; [] without FID tracking."""
        from gans.bench.measure import fid_curve
        from gans.runlog import read_run
        from gans.training.clock import Clock

        return fid_curve(read_run(self.run_dir), Clock.of(self.recipe))

    def load(self, best: bool = False, **options) -> LoadedGenerator:
        """`gans.load` of the last checkpoint, or of the best one with `best=True`."""
        if best and self.best_checkpoint is None:
            raise GansError(f"{self.run_dir} has no best.ckpt (it trained without FID "
                            "tracking); load the last checkpoint")
        return load(self.best_checkpoint if best else self.last_checkpoint, **options)


def train(recipe: Optional[RecipeLike] = None, out: PathLike = "runs", *,
          overrides: Optional[list] = None, resume: Optional[PathLike] = None,
          trust: bool = False) -> Run:
    """`gans train`: train a recipe (a `Recipe`, a mapping or a YAML file) with `overrides`
    ("a.b=c", as `--set` takes them) into `out`/<name>/version_<n>/, and return the `Run`.

    `resume` (a run directory or one of its checkpoints) continues that run in its own
    directory with the recipe inside its checkpoint; `overrides` then change it (e.g.
    "train.steps=2000" to train longer). `trust` allows a checkpoint that needs a full
    unpickle. Raises `RecipeError` for a bad recipe or override before anything is written,
    and `TrainingDiverged` when a loss or gradient stops being finite."""
    from gans.training.run import resume_point, train as train_run

    if resume is None:
        if recipe is None:
            raise GansError("gans train needs a recipe (gans train RECIPE.yaml) or --resume "
                            "RUN_DIR")
        recipe = as_recipe(recipe, overrides)
        checkpoint = None
    else:
        if recipe is not None:
            raise GansError("--resume continues a run with the recipe inside its checkpoint; "
                            "drop RECIPE (change keys with --set) or start a new run")
        checkpoint = resume_point(Path(resume))
        raw = read_checkpoint(checkpoint, trust=trust)["hyper_parameters"]["recipe"]
        recipe = checkpoint_recipe(apply_overrides(raw, overrides), checkpoint, trust)
    run_dir = train_run(recipe, Path(out), resume=checkpoint, trust=trust)
    return Run(run_dir, recipe)


# ----------------------------------------------------------------------------- evaluation


def evaluate(checkpoint: PathLike, metrics: Union[str, Sequence[str], None] = None,
             num_fake: int = 10000, reference: Optional[PathLike] = None, *,
             num_real: Optional[int] = None, batch_size: int = INCEPTION_BATCH_SIZE, seed: int = 0,
             use_cache: bool = True, use_ema: bool = True, device: Optional[str] = None,
             precision: str = "fp32", compile: bool = False, trust: bool = False,
             json_path: Optional[PathLike] = None) -> dict:
    """`gans eval`: metrics of a checkpoint's generator against real images.

    `metrics`: names from fid, kid, pr, dc, coverage, intra_fid (a list or "fid,kid");
    default: all that apply. `reference`: "train", "test" or a folder of images (default:
    the dataset's test split where it has one). Returns {figure: {"value": ..., protocol
    fields: extractor, weights_sha256, num_fake, num_real, reference, resize, precision,
    generator, seed}}; `json_path` also writes it as JSON."""
    from gans.evaluation.evaluate import EvalOptions, evaluate as evaluate_checkpoint, \
        parse_metrics, write_json
    from gans.files import ensure_writable_folder

    if metrics is not None and not isinstance(metrics, str):
        metrics = ",".join(metrics)
    options = EvalOptions(
        metrics=parse_metrics(metrics) if metrics else None, num_fake=num_fake,
        reference=None if reference is None else str(reference), num_real=num_real,
        batch_size=batch_size, seed=seed, use_cache=use_cache, use_ema=use_ema, device=device,
        trust_checkpoint=trust, precision=precision, compile=compile)
    if json_path is not None:
        if Path(json_path).is_dir():
            raise GansError(f"--json {json_path} is a folder; pass a file path")
        ensure_writable_folder(Path(json_path).parent, "pass --json in a writable folder")
    results = evaluate_checkpoint(Path(checkpoint), options)
    if json_path is not None:
        write_json(results, Path(json_path))
    return results


def benchmark(suite: PathLike, out: PathLike = "runs", *, only: Optional[list] = None,
              dry_run: bool = False, watts: Optional[float] = None) -> Optional[dict]:
    """`gans bench`: train the suite's unfinished runs (a finished run is skipped, an
    interrupted one resumed), evaluate them and write the tables and plots into
    `out`/<suite name>/. Returns what results.json holds (per variant, mean and std over
    seeds; per run, its figures and costs), or None for `dry_run`, which prints the plan.
    (Named `benchmark` because `gans.bench` is the package that does the work.)"""
    from gans.bench import load_suite, run_suite

    run_suite(Path(suite), Path(out), only=only, dry_run=dry_run, watts=watts)
    if dry_run:
        return None
    folder = Path(out) / load_suite(Path(suite)).name
    return json.loads((folder / "results.json").read_text())


# ----------------------------------------------------------------------------- files


def export(checkpoint: PathLike, out: PathLike, *, use_ema: bool = True,
           trust: bool = False) -> str:
    """`gans export`: the generator alone as safetensors (loading it runs no code), with the
    recipe in its metadata; `gans.load` reads it. Returns which weights: "ema" or "raw"."""
    from gans.sampling.export import export_generator

    return export_generator(Path(checkpoint), Path(out), use_ema=use_ema, trust=trust)


def card(checkpoint: PathLike, *, trust: bool = False) -> str:
    """`gans card`: a Markdown model card of a checkpoint (recipe, data, training, FID)."""
    from gans.sampling.provenance import model_card

    return model_card(Path(checkpoint), trust=trust)


def inspect(image: PathLike) -> dict:
    """`gans inspect`: the provenance an image written by gans carries ({"seeds": "0", ...});
    {} for an image without it."""
    from gans.sampling.provenance import read_info

    return read_info(Path(image))


def registered() -> dict:
    """`gans recipe --list`: the names a recipe can use, {what: [names]}."""
    return {title: list(table.names()) for title, table in (
        ("generators", registry.GENERATORS), ("discriminators", registry.DISCRIMINATORS),
        ("objectives (loss.name)", registry.OBJECTIVES), ("datasets", registry.DATASETS),
        ("augmentations (augment.policy)", registry.AUGMENTATIONS))}
