"""Image prompts: project a picture into a trained generator (find the latent whose image is
closest), then vary, mix or move that latent.

The loop is StyleGAN2-ADA's projector (Karras et al. 2020, projector.py): Adam from a
typical starting latent, the learning rate ramped up then down along a cosine, and Gaussian
noise on the latent that decays to nothing over the first three quarters of the steps, so the
search looks around before it settles. What differs:

- The space: z for any generator (kept typical by putting it back on the sphere of radius
  sqrt(latent_dim) after every step, where nearly all of a Gaussian's mass lies), w (one style
  vector, from the average w) or w+ (one per layer) for style generators.
- The per-pixel noise of stylegan-lite is switched off while projecting and when rendering a
  projected latent (`synthesis(ws, noise=False)`): the image of a latent is then one image,
  and no noise maps need optimising and regularising as the projector does.
- No LPIPS (its VGG weights cannot be downloaded here): the distance is one of DISTANCES,
  built from pixels, SSIM or the features of networks gans already has (docs/projection.md
  measures which works best).
- A batch of latents is optimised at once, each on its own target (Adam's steps are per
  element, so they do not interact): several images, and for a class-conditional model one
  start per class when the class is to be found.

A projected latent is saved with `save_latent` and read with `read_latent`, which checks it
against the generator it is used with: `gans sample --latent` reads what `gans project` writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from gans.errors import GansError
from gans.files import atomic_write
from gans.models.base import StyleGenerator, missing

SPACES = ("z", "w", "w+")
LATENT_FORMAT = "gans-latent/1"
DEFAULT_DISTANCE = "pixel+ssim"
# Measured on the Fashion-MNIST checkpoints (docs/projection.md): z reconstructs best at 0.3
# (0.03: 30.1 dB, 0.1: 33.4, 0.3: 35.6, 0.6: 33.5, 1.0: 30.4); w equally well at 0.1 and 0.3
# (39.7, 40.0 dB), and 0.1 keeps w nearer the typical ones.
LEARNING_RATES = {"z": 0.3, "w": 0.1, "w+": 0.1}
MIN_SIDE = 8  # px: the smallest image side worth projecting
W_STATS_SAMPLES = 2000  # z drawn to estimate the average w of a class and the spread of w


# ----------------------------------------------------------------------------- distances
# Each distance: (images, targets) both (N, C, H, W) in [-1, 1] -> (N,) per-image distance.
# Feature distances follow LPIPS without its learned weights: unit-normalise each feature
# vector over channels, then average the squared differences, per layer.


def pixel_distance(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (images - targets).square().flatten(1).mean(1)


def ssim_distance(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    kernel = min(11, images.size(-1) // 2 * 2 - 1)  # odd, and smaller than the image
    return 1 - ssim(images, targets, data_range=2.0, kernel_size=kernel, reduction="none")


class FeatureDistance(nn.Module):
    """LPIPS-style distance in the activations of `layers` of `network` (run on `prepare`d
    images); the target's features are computed once per target batch."""

    def __init__(self, network: nn.Module, layers: list, prepare: Callable = lambda x: x):
        super().__init__()
        self.network, self.prepare = network.eval().requires_grad_(False), prepare
        self._outputs: list = []
        for layer in layers:
            layer.register_forward_hook(lambda _m, _i, out: self._outputs.append(out))
        self._target_key, self._target_features = None, None

    def features(self, images: torch.Tensor) -> list:
        self._outputs = []
        self.network(self.prepare(images))
        return [out / (out.square().sum(1, keepdim=True) + 1e-10).sqrt()
                for out in self._outputs if out.dim() == 4]

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        key = (targets.data_ptr(), tuple(targets.shape))
        if key != self._target_key:
            with torch.no_grad():
                self._target_features = self.features(targets)
            self._target_key = key
        return sum((a - b).square().sum(1).flatten(1).mean(1)
                   for a, b in zip(self.features(images), self._target_features))


def classifier_distance(context: "DistanceContext") -> nn.Module:
    """The shipped Fashion-MNIST classifier's three convolution blocks (any image: it
    averages colour and resizes to 28x28 itself)."""
    from gans.evaluation.classifiers.fashion_mnist import load_classifier

    classifier = load_classifier()
    return FeatureDistance(classifier, list(classifier.features))


def discriminator_distance(context: "DistanceContext") -> nn.Module:
    """The run's own discriminator: every convolution's output (it knows the data best)."""
    from gans.sampling.checkpoint import load_discriminator

    if context.checkpoint is None:
        raise GansError("--distance discriminator needs the checkpoint the generator came from")
    network = load_discriminator(context.checkpoint, trust=context.trust)
    if getattr(network, "pack", 1) > 1:
        raise GansError(f"--distance discriminator needs features of one image, and this "
                        f"run's discriminator stacks {network.pack} (model.discriminator.pack): "
                        "use another distance, e.g. --distance pixel+classifier")
    layers = [m for m in network.modules()
              if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4]
    labels = None

    class Unconditional(nn.Module):
        # A conditional discriminator wants labels; its convolutions (all we read) do not.
        def forward(self, images):
            n = images.size(0)
            classes = getattr(network, "num_classes", 0)
            return network(images, torch.zeros(n, dtype=torch.long) if classes else labels)

    return FeatureDistance(Unconditional(), layers)


def inception_distance(context: "DistanceContext") -> nn.Module:
    """Inception-v3 (the FID network) up to Mixed_6e, on images resized to 299x299 as for FID."""
    from gans.data import as_unit
    from gans.evaluation.inception import make_extractor, resolve_inception_weights, tf1_resize

    extractor = make_extractor(resolve_inception_weights()).float()
    names = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
             "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
             "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")
    trunk = nn.Sequential(*[getattr(extractor, name) for name in names])

    def prepare(images):  # [-1, 1] -> what the network's own forward feeds its first layer
        rgb = as_unit(images.expand(-1, 3, -1, -1)) * 255
        return (tf1_resize(rgb, 299) - 128) / 128

    return FeatureDistance(trunk, [trunk[i] for i in (2, 9, 14)], prepare)


@dataclass
class DistanceContext:
    checkpoint: Optional[Path] = None
    trust: bool = False


# name -> (weight in a sum, the function, or a factory that builds it from the context)
DISTANCES = {"pixel": (1.0, pixel_distance, None),
             "ssim": (0.1, ssim_distance, None),
             "classifier": (1.0, None, classifier_distance),
             "discriminator": (1.0, None, discriminator_distance),
             "inception": (1.0, None, inception_distance)}


def make_distance(spec: str, context: Optional[DistanceContext] = None) -> Callable:
    """"pixel+ssim" -> a function (images, targets) -> {term: (N,) distance}: each named term
    times its weight in DISTANCES (weights put the terms on a similar scale)."""
    names = [name.strip() for name in spec.split("+") if name.strip()]
    unknown = [name for name in names if name not in DISTANCES]
    if unknown or not names:
        raise GansError(f"--distance {spec!r}: known distances are {', '.join(DISTANCES)}, "
                        "joined with + (e.g. pixel+ssim)")
    context = context or DistanceContext()
    terms = {}
    for name in names:
        weight, function, factory = DISTANCES[name]
        terms[name] = (weight, function or factory(context))

    def distance(images: torch.Tensor, targets: torch.Tensor) -> dict:
        return {name: weight * function(images, targets) for name, (weight, function)
                in terms.items()}

    return distance


def psnr(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, on the [-1, 1] range (peak-to-peak 2)."""
    mse = (images.clamp(-1, 1) - targets).square().flatten(1).mean(1)
    return 10 * torch.log10(4 / mse.clamp_min(1e-12))


# ----------------------------------------------------------------------------- latents


def check_space(generator: nn.Module, space: str) -> None:
    if space not in SPACES:
        raise GansError(f"--space {space!r}: pick one of {', '.join(SPACES)}")
    lacking = missing(generator, StyleGenerator)
    if space != "z" and lacking:
        raise GansError(f"--space {space}: the {type(generator).__name__} of this checkpoint "
                        f"has no w space (it lacks {', '.join(lacking)}; w and w+ need a style "
                        "generator such as stylegan-lite); use --space z")


def render(generator: nn.Module, space: str, latent: torch.Tensor,
           labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The images of latents of `space` (z: (N, latent_dim), w: (N, w_dim), w+: (N, num_ws,
    w_dim)); style generators render without per-pixel noise, so a latent is one image."""
    if space == "z":
        if getattr(generator, "num_classes", 0) and labels is None:
            raise GansError("this checkpoint is class-conditional: a z latent needs its class")
        return generator(latent, labels) if labels is not None else generator(latent)
    ws = generator.broadcast(latent) if space == "w" else latent
    return generator.synthesis(ws, noise=False)


@torch.no_grad()
def w_statistics(generator: nn.Module, label: Optional[int] = None,
                 samples: int = W_STATS_SAMPLES) -> tuple:
    """(mean w, spread) of the mapping network, for one class of a conditional model or
    overall; spread is the projector's: the root mean squared distance of w from the mean."""
    z = torch.randn(samples, generator.latent_dim, generator=torch.Generator().manual_seed(123))
    device = next(generator.parameters()).device
    labels = {} if not getattr(generator, "num_classes", 0) else {
        "labels": (torch.full((samples,), label, dtype=torch.long) if label is not None
                   else torch.arange(samples) % generator.num_classes).to(device)}
    w = generator.mapping(z.to(device), **labels)
    mean = w.mean(0) if label is not None or labels else generator.w_avg.to(w.dtype)
    return mean, float((w - mean).square().sum(1).mean().sqrt())


def latent_scale(generator: nn.Module, space: str) -> float:
    """The size of one typical step in `space`: 1 for z (a standard Gaussian), the spread of
    w for w and w+; --spread and the latent noise are in these units."""
    if space == "z":
        return 1.0
    return w_statistics(generator)[1] / math.sqrt(generator.w_avg.numel())


def _to_sphere(z: torch.Tensor) -> torch.Tensor:
    return z * math.sqrt(z.size(-1)) / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)


@contextlib.contextmanager
def frozen(network: nn.Module):
    """The network's weights need no gradient while latents are optimised through it."""
    previous = [p.requires_grad for p in network.parameters()]
    network.requires_grad_(False)
    try:
        yield network
    finally:
        for p, flag in zip(network.parameters(), previous):
            p.requires_grad_(flag)


# ----------------------------------------------------------------------------- projection


@dataclass
class ProjectOptions:
    """The projector's settings; defaults are StyleGAN2-ADA's where they carry over."""

    space: str = "z"
    steps: int = 300
    seed: int = 0
    distance: str = DEFAULT_DISTANCE
    lr: Optional[float] = None  # in units of latent_scale; None: LEARNING_RATES[space]
    lr_rampup: float = 0.05  # share of the steps the learning rate takes to rise
    lr_rampdown: float = 0.25  # share of the steps over which it falls to 0 at the end
    noise: float = 0.05  # latent noise at the start, in units of latent_scale
    noise_ramp: float = 0.75  # share of the steps over which that noise decays to 0
    starts: int = 16  # z: the best of this many random z is where the search starts
    frames: int = 8  # snapshots of the progress kept for the strip

    def check(self) -> None:
        if self.steps < 1:
            raise GansError(f"--steps must be at least 1, got {self.steps}")
        if self.space not in SPACES:
            raise GansError(f"--space {self.space!r}: pick one of {', '.join(SPACES)}")
        if self.starts < 1:
            raise GansError(f"starts must be at least 1, got {self.starts}")


@dataclass
class Projection:
    """One image's projection: its latent (batch of one) in `space`, the class (conditional
    models), the target and final images in [-1, 1], snapshots and the per-step record."""

    space: str
    latent: torch.Tensor
    label: Optional[int]
    target: torch.Tensor
    image: torch.Tensor
    frames: torch.Tensor
    history: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def psnr(self) -> float:
        return float(psnr(self.image, self.target))


def learning_rate(options: ProjectOptions, t: float) -> float:
    """The projector's schedule at progress t in [0, 1]: linear ramp up, cosine ramp down."""
    ramp = min(1.0, (1.0 - t) / options.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    peak = LEARNING_RATES[options.space] if options.lr is None else options.lr
    return peak * ramp * min(1.0, t / options.lr_rampup)


def project(generator: nn.Module, targets: torch.Tensor, options: ProjectOptions,
            label: Optional[int] = None, find_class: bool = False,
            distance: Optional[Callable] = None,
            on_step: Optional[Callable[[int, torch.Tensor], None]] = None) -> list:
    """Project each of `targets` ((N, C, H, W) in [-1, 1], at the generator's size) into
    `options.space`; a Projection per target. A class-conditional model projects into class
    `label`, or with `find_class` into every class at once, keeping the closest.
    `on_step(step, images)` sees the current images (N x tries, clean) at each snapshot."""
    options.check()
    check_space(generator, options.space)
    classes = getattr(generator, "num_classes", 0)
    # In w the class has already been mapped into the styles: without one, a conditional
    # model's w starts from the average over all classes. z needs its class.
    if classes and label is None and not find_class and options.space == "z":
        raise GansError("this checkpoint is class-conditional: pick the class with --class "
                        "NAME, or let projection find it with --class best")
    distance = distance or make_distance(options.distance)
    device = next(generator.parameters()).device
    tries = list(range(classes)) if classes and find_class else [label]
    n, k = targets.size(0), len(tries)
    # Row i * k + j: target i, tried class j.
    repeated = targets.to(device).repeat_interleave(k, 0)
    labels = None if tries == [None] else torch.tensor(tries * n, dtype=torch.long,
                                                       device=device)
    rng = torch.Generator().manual_seed(options.seed)
    started = time.perf_counter()
    with frozen(generator), torch.no_grad():
        start, scale = _start(generator, options, repeated, labels, tries, distance, rng)
    latent = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], betas=(0.9, 0.999), lr=0.0)  # set every step
    snapshot_at = set(np.linspace(0, options.steps - 1, options.frames).round().astype(int))
    frames, history = [], [[] for _ in range(n * k)]
    with frozen(generator):
        for step in range(options.steps):
            t = step / options.steps
            lr = learning_rate(options, t) * scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            strength = scale * options.noise * max(0.0, 1.0 - t / options.noise_ramp) ** 2
            noise = torch.randn(latent.shape, generator=rng).to(device) * strength
            images = render(generator, options.space, latent + noise, labels)
            terms = distance(images, repeated)
            total = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            if options.space == "z":
                with torch.no_grad():
                    latent.copy_(_to_sphere(latent))
            quality = psnr(images.detach(), repeated)
            for row in range(n * k):
                history[row].append({"step": step, "lr": round(lr, 6),
                                     "distance": float(total[row].detach()),
                                     **{name: float(v[row].detach()) for name, v in terms.items()},
                                     "psnr": round(float(quality[row]), 3)})
            if step in snapshot_at:
                with torch.no_grad():
                    clean = render(generator, options.space, latent, labels).float().cpu()
                frames.append(clean)
                if on_step is not None:
                    on_step(step, clean)
        with torch.no_grad():
            final = render(generator, options.space, latent, labels).float().cpu()
            closeness = sum(distance(final.to(device), repeated).values()).cpu()
    seconds = (time.perf_counter() - started) / n
    frames = torch.stack(frames, 1)  # (n * k, frames, C, H, W)
    results = []
    for i in range(n):
        best = i * k + int(closeness[i * k:(i + 1) * k].argmin())
        results.append(Projection(
            options.space, latent[best:best + 1].detach().cpu(),
            tries[best - i * k], targets[i:i + 1].cpu(),
            final[best:best + 1], frames[best], history[best], seconds))
    return results


def _start(generator, options, targets, labels, tries, distance, rng) -> tuple:
    """(starting latents, the scale of the latent noise): for z the closest of
    `options.starts` random z per row, for w and w+ the average w (of the row's class)."""
    rows = targets.size(0)
    device = targets.device
    if options.space == "z":
        dim = generator.latent_dim
        candidates = torch.randn(options.starts, rows, dim, generator=rng).to(device)
        scores = torch.stack([sum(distance(render(generator, "z", z, labels), targets).values())
                              for z in candidates])  # (starts, rows)
        best = scores.argmin(0)
        return _to_sphere(candidates[best, torch.arange(rows)]), 1.0
    means, spreads = {}, []
    for label in tries:
        means[label], spread = w_statistics(generator, label)
        spreads.append(spread)
    w = torch.stack([means[tries[row % len(tries)]] for row in range(rows)]).to(device)
    scale = sum(spreads) / len(spreads) / math.sqrt(w.size(-1))  # per component
    if options.space == "w+":
        w = generator.broadcast(w).clone()
    return w, scale


# ----------------------------------------------------------------------------- images in


def load_target(source, resolution: int, channels: int) -> torch.Tensor:
    """An image file (a path, or its bytes: an upload) as the model sees it: centre-cropped to a
    square, resized to the model's resolution and channels (as training data is),
    (1, C, H, W) in [-1, 1]."""
    from gans.data import as_signed, decoded_image, to_resolution

    uploaded = isinstance(source, (bytes, bytearray))
    pixels = decoded_image(source if uploaded else Path(source))
    height, width = pixels.shape[-2:]
    # Training data is resized too (Fashion-MNIST's 28 px to 32), so a somewhat smaller image
    # is fine; one under half the size would be mostly made up by the resize.
    if min(height, width) < max(MIN_SIDE, resolution // 2):
        name = "the uploaded image" if uploaded else f"image {source}"
        raise GansError(f"{name} is {width}x{height}; this model makes "
                        f"{resolution}x{resolution} images, so give one at least "
                        f"{max(MIN_SIDE, resolution // 2)} px on its shorter side")
    pixels = to_resolution(pixels[None], resolution, channels)
    return as_signed(pixels)


# ----------------------------------------------------------------------------- latent files


@dataclass
class Latent:
    """A latent read from a file: its space, the tensor (batch of one), the class."""

    space: str
    tensor: torch.Tensor
    label: Optional[int]
    info: dict


def save_latent(path: Path, projection: Projection, generator: nn.Module,
                provenance: dict) -> Path:
    """The latent as .npz (plain arrays, no pickle): what `gans sample --latent` reads."""
    meta = {"format": LATENT_FORMAT, "space": projection.space,
            "generator": type(generator).__name__,
            "label": -1 if projection.label is None else projection.label,
            **{k: str(v) for k, v in provenance.items() if v is not None}}

    def write(f):
        np.savez(f, latent=projection.latent.numpy().astype(np.float32),
                 meta=np.array(json.dumps(meta)))

    atomic_write(Path(path), write)
    return Path(path)


def read_latent(path: Path, generator: nn.Module) -> Latent:
    """A latent file written by `gans project`, checked against `generator`: its space must
    exist in the model and its size fit, or a one-line GansError says what does not."""
    path = Path(path)
    if not path.is_file():
        raise GansError(f"--latent {path} not found; pass a .npz written by gans project")
    try:
        with np.load(path, allow_pickle=False) as data:
            latent = torch.from_numpy(np.array(data["latent"], dtype=np.float32))
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise GansError(f"--latent {path} is not a latent file ({exc.__class__.__name__}); pass "
                        "a .npz written by gans project") from None
    space = meta.get("space")
    if meta.get("format") != LATENT_FORMAT or space not in SPACES:
        raise GansError(f"--latent {path} is not a latent file of gans project (format "
                        f"{meta.get('format')!r}); pass a .npz written by gans project")
    try:
        check_space(generator, space)
    except GansError:
        raise GansError(f"--latent {path} holds a {space} latent, and the "
                        f"{type(generator).__name__} of this checkpoint has no {space} space; "
                        "use it with the checkpoint it was projected into") from None
    expected = {"z": (1, generator.latent_dim)}
    if space != "z":
        w_dim = generator.w_avg.numel()
        expected.update({"w": (1, w_dim), "w+": (1, generator.num_ws, w_dim)})
    if tuple(latent.shape) != expected[space]:
        raise GansError(f"--latent {path}: its {space} latent is shaped {tuple(latent.shape)}, "
                        f"this checkpoint's is {expected[space]}; use it with the checkpoint it "
                        f"was projected into ({meta.get('checkpoint', 'named in the file')})")
    label = int(meta.get("label", -1))
    classes = getattr(generator, "num_classes", 0)
    if label >= classes > 0 or (space == "z" and classes and label < 0):
        raise GansError(f"--latent {path}: its class {label} does not fit this checkpoint's "
                        f"{classes} classes; use it with the checkpoint it was projected into")
    return Latent(space, latent, None if label < 0 or not classes else label, meta)


# ----------------------------------------------------------------------------- around a latent


def _labels_of(latent: Latent, n: int, device) -> Optional[torch.Tensor]:
    return None if latent.label is None else torch.full((n,), latent.label, dtype=torch.long,
                                                        device=device)


@torch.no_grad()
def latent_image(generator: nn.Module, latent: Latent) -> torch.Tensor:
    device = next(generator.parameters()).device
    return render(generator, latent.space, latent.tensor.to(device),
                  _labels_of(latent, 1, device)).float().cpu()


@torch.no_grad()
def variations(generator: nn.Module, latent: Latent, num: int, spread: float,
               seed: int = 0) -> torch.Tensor:
    """The latent's own image, then `num` images of latents drawn around it: Gaussian steps of
    `spread` typical steps (latent_scale) per component. One step for all layers of a w+."""
    if num < 1:
        raise GansError(f"--variations must be at least 1, got {num}")
    if not spread > 0:
        raise GansError(f"--spread must be above 0 (0.3 to 1 is usual), got {spread}")
    device = next(generator.parameters()).device
    base = latent.tensor.to(device)
    width = base.size(-1)
    steps = torch.randn(num, width, generator=torch.Generator().manual_seed(seed)).to(device)
    steps = steps * spread * latent_scale(generator, latent.space)
    if latent.space == "w+":
        steps = steps[:, None, :]
    around = base + steps
    if latent.space == "z":
        around = _to_sphere(around)  # as typical as the projection itself
    images = render(generator, latent.space, torch.cat([base, around]),
                    _labels_of(latent, num + 1, device))
    return images.float().cpu()


@torch.no_grad()
def toward_class(generator: nn.Module, latent: Latent, class_index: int,
                 frames: int = 8) -> torch.Tensor:
    """The projection moved toward class `class_index` of a conditional model: for w and w+,
    `frames` images along the line from the latent to it plus the difference between the
    class's average w and its own class's (or the overall average); for z, the same z drawn
    in its own class and in the new one."""
    classes = getattr(generator, "num_classes", 0)
    if not classes:
        raise GansError("--toward: this checkpoint's model is not class-conditional (trained "
                        "without data.conditional: true); drop --toward")
    device = next(generator.parameters()).device
    if latent.space == "z":
        labels = torch.tensor([latent.label, class_index], dtype=torch.long, device=device)
        return render(generator, "z", latent.tensor.to(device).repeat(2, 1), labels).float().cpu()
    if frames < 2:
        raise GansError(f"--frames must be at least 2, got {frames}")
    own = w_statistics(generator, latent.label)[0]
    shift = (w_statistics(generator, class_index)[0] - own).to(device)
    base = latent.tensor.to(device)
    t = torch.linspace(0, 1, frames, device=device)
    moved = base + t.view(-1, *([1] * (base.dim() - 1))) * shift
    return render(generator, latent.space, moved).float().cpu()


def latent_ws(generator: nn.Module, latent: Latent) -> torch.Tensor:
    """The per-layer styles (1, num_ws, w_dim) of a w or w+ latent, for style mixing."""
    if latent.space == "z":
        raise GansError("--style-mix with --latent needs a w or w+ latent (gans project "
                        "--space w); a z latent has no per-layer styles")
    device = next(generator.parameters()).device
    base = latent.tensor.to(device)
    return generator.broadcast(base) if latent.space == "w" else base


# ----------------------------------------------------------------------------- files out


def write_projection(projection: Projection, folder: Path, stem: str, generator: nn.Module,
                     provenance: dict) -> dict:
    """The target as the model sees it, the projection, the latent, a strip of the progress
    and the distances per step; {what: path}."""
    from gans.data import as_unit
    from gans.sampling.provenance import make_info, save_image

    folder = Path(folder)
    fields = {"space": projection.space, "steps": len(projection.history),
              "psnr_db": round(projection.psnr, 2), **provenance}
    if projection.label is not None and "class_names" in provenance:
        fields["class"] = provenance["class_names"][projection.label]
    fields.pop("class_names", None)
    paths = {"target": folder / f"{stem}-target.png",
             "projection": folder / f"{stem}-projection.png",
             "progress": folder / f"{stem}-progress.png",
             "latent": folder / f"{stem}-latent.npz",
             "distances": folder / f"{stem}-distances.json"}
    # The target is the user's picture, not the model's: it names the model it was sized for.
    sized_for = {k: fields.get(k) for k in ("recipe", "checkpoint", "checkpoint_sha256",
                                            "image")}
    save_image(as_unit(projection.target[0]), paths["target"],
               make_info("projection-target", **sized_for))
    save_image(as_unit(projection.image[0]), paths["projection"],
               make_info("projection", **fields))
    strip = torch.cat([projection.frames, projection.target]).clamp(-1, 1)
    save_image(as_unit(strip), paths["progress"], make_info("projection-progress", **fields),
               nrow=len(strip))
    checkpoint = fields.get("checkpoint")
    save_latent(paths["latent"], projection, generator, {
        "checkpoint": None if checkpoint is None else Path(checkpoint).name,
        "checkpoint_sha256": fields.get("checkpoint_sha256"), "weights": fields.get("weights"),
        "class": fields.get("class"), "recipe_name": (fields.get("recipe") or {}).get("name")})
    record = {"space": projection.space, "class": fields.get("class"),
              "psnr_db": round(projection.psnr, 3), "seconds": round(projection.seconds, 3),
              "steps": projection.history}
    atomic_write(paths["distances"], lambda f: f.write(json.dumps(record, indent=1).encode()))
    return paths
