"""Generator -> images: latents, grids, truncation, style mixing, interpolation, writers.

Generators come from gans/sampling/checkpoint.py (a checkpoint or an exported file)."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from gans.errors import GansError
from gans.models.base import StyleGenerator, missing
from gans.files import atomic_write, ensure_writable_folder


def latents(num: int, latent_dim: int, seed: int,
            truncate_z: Optional[float] = None) -> torch.Tensor:
    """Drawn on the CPU so a seed gives the same images on every device. `truncate_z` T:
    BigGAN's truncation trick, every component with |z| > T drawn again until it is within."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(num, latent_dim, generator=rng)
    if truncate_z is not None:
        if not truncate_z > 0:
            raise GansError(f"--truncate-z must be above 0 (1 to 2 is usual), got {truncate_z}")
        # Redraws come after the first draw, so the seed's untruncated z stays as it was.
        outside = z.abs() > truncate_z
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=rng)
            outside = z.abs() > truncate_z
    return z


@contextlib.contextmanager
def seeded_noise(seed: int, device: torch.device):
    """Per-layer noise (StyleGAN-lite) drawn from `seed`, so that a seed gives the same images
    each time; the caller's random state is restored afterwards."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def sketch_input(drawing, resolution: int, channels: int) -> torch.Tensor:
    """A hand drawing (a file path, its bytes or a PIL image; any size and mode) as an
    image-to-image model's input: uint8 (1, channels, R, R), thinned dark lines on white, as
    the training edges are. `gans sample --sketch`, `LoadedGenerator.translate` and the
    explorer's sketch canvas all read drawings here. One-line GansError when unusable."""
    from gans.data import decoded_image
    from gans.paired import normalise_sketch

    image = decoded_image(drawing)
    if image.numel() == 0:
        raise GansError("the drawing is an empty image; draw dark lines on a light background")
    return normalise_sketch(image, resolution, channels)


def translate(generator: nn.Module, conditions: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """An image-to-image generator's images in [-1, 1] from uint8 input images (N, C, H, W)
    on its device; its dropout noise is drawn from `seed`."""
    from gans.data import as_signed

    dtype = next(generator.parameters()).dtype
    normalised = as_signed(conditions, dtype)
    was_training = generator.training
    generator.eval()
    try:
        with seeded_noise(seed, normalised.device), torch.no_grad():
            return generator(normalised)
    finally:
        generator.train(was_training)


def supports_truncation(generator: nn.Module) -> bool:
    """Whether the generator takes `truncation_psi` (a tracked average w to pull toward)."""
    return "truncation_psi" in inspect.signature(generator.forward).parameters


def supports_style_mixing(generator: nn.Module) -> bool:
    return not missing(generator, StyleGenerator)


def _check_truncation(generator: nn.Module, truncation: Optional[float]) -> dict:
    if truncation is None:
        return {}
    if not supports_truncation(generator):
        raise GansError(f"--truncation: the {type(generator).__name__} of this checkpoint has no "
                        "truncation (it needs a mapping network with an average w, such as "
                        "stylegan-lite); drop --truncation, or use --truncate-z 1.5 (any model)")
    if not 0.0 <= truncation <= 1.0:
        raise GansError(f"--truncation must be in [0, 1] (1 = none, 0.7 is usual), "
                        f"got {truncation}")
    return {"truncation_psi": truncation}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def resolve_class(text: str, names) -> int:
    """A class index from its name or index: case, spaces, hyphens and underscores do not
    matter, and either side of a slash names the class too ("sneaker", "ankle-boot", "tshirt",
    "7"). A name wins over an index: a folder's classes may be named by numbers ("3", "7")."""
    names = list(names)
    if text.strip() in names:
        return names.index(text.strip())
    if text.strip().isdigit() and int(text) < len(names):
        return int(text)
    wanted = _key(text)
    for index, name in enumerate(names):
        if wanted and wanted in {_key(name), *(_key(part) for part in name.split("/"))}:
            return index
    known = ", ".join(f"{i}={name}" for i, name in enumerate(names))
    raise GansError(f"--class {text!r}: not a class of this checkpoint; known classes: {known}")


def class_labels(num_classes: int, num: int, class_index: Optional[int] = None,
                 per_class: Optional[int] = None) -> Optional[torch.Tensor]:
    """Labels for `num` images of a conditional model: one class, `per_class` of each class
    (class-major, one grid row per class), or every class in turn; None when unconditional."""
    if not num_classes:
        return None
    if per_class is not None:
        return torch.arange(num_classes).repeat_interleave(per_class)
    if class_index is not None:
        return torch.full((num,), class_index, dtype=torch.long)
    return torch.arange(num) % num_classes


@torch.no_grad()
def generate(generator: nn.Module, num: int, seed: int, batch_size: int = 256,
             device: Optional[torch.device] = None,
             truncation: Optional[float] = None,
             truncate_z: Optional[float] = None,
             labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`num` images in [-1, 1] as a CPU float tensor; `truncation` psi where the model has it,
    `truncate_z` (resampled tails of z) for any model; `labels`: the classes of a conditional
    model (one per image)."""
    options = _check_truncation(generator, truncation)
    device = device or next(generator.parameters()).device
    z = latents(num, generator.latent_dim, seed, truncate_z)
    label_chunks = labels.split(batch_size) if labels is not None else [None] * len(
        z.split(batch_size))
    with seeded_noise(seed, device):
        return torch.cat([
            generator(chunk.to(device), None if y is None else y.to(device), **options)
            .float().cpu() for chunk, y in zip(z.split(batch_size), label_chunks)])


@torch.no_grad()
def mixing_layers(generator: nn.Module) -> tuple:
    """The layers [start, stop) a style-mixing cell takes from its column seed by default:
    every layer after the 4x4 and 8x8 ones (texture, colour); the row seed keeps the coarse
    ones (pose and shape)."""
    return min(4, generator.num_ws - 1), generator.num_ws


def style_mixing_grid(generator: nn.Module, seeds: list, truncation: Optional[float] = None,
                      label: Optional[int] = None, column_seeds: Optional[list] = None,
                      layers: Optional[tuple] = None,
                      row_ws: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The usual style-mixing grid as (len(seeds) + 1) x (len(column_seeds) + 1) images, row
    by row.

    The first row holds each column seed's own image (the corner is blank), the first column
    each row seed's; the cell at (row i, column j) is row seed i's styles with the layers in
    `layers` [start, stop) taken from column seed j (by default `mixing_layers`: coarse from
    the row, fine from the column). Column seeds default to the row seeds. `label`: the class
    of every image, for a class-conditional model. `row_ws` (rows, num_ws, w_dim): the rows'
    styles given directly (e.g. a projected w) instead of drawn from `seeds`.
    """
    lacking = missing(generator, StyleGenerator)
    if lacking:
        raise GansError(f"--style-mix: the {type(generator).__name__} of this checkpoint has no "
                        f"per-layer styles (it lacks {', '.join(lacking)} of a style generator, "
                        "such as stylegan-lite); drop --style-mix")
    psi = _check_truncation(generator, truncation).get("truncation_psi", 1.0)
    device = next(generator.parameters()).device

    def ws_of(batch: list) -> torch.Tensor:
        z = torch.cat([latents(1, generator.latent_dim, seed) for seed in batch]).to(device)
        return generator.broadcast(generator.mapping(z, psi, **_labels(label, len(batch), device)))

    row_ws = ws_of(seeds) if row_ws is None else row_ws.to(device)
    col_ws = row_ws if column_seeds is None else ws_of(column_seeds)
    start, stop = layers or mixing_layers(generator)
    own_rows = generator.synthesis(row_ws, noise=False).float().cpu()
    own_cols = own_rows if column_seeds is None else \
        generator.synthesis(col_ws, noise=False).float().cpu()
    out = [torch.ones_like(own_cols[:1]), own_cols]
    for i in range(len(row_ws)):
        mixed = row_ws[i:i + 1].repeat(len(col_ws), 1, 1)
        mixed[:, start:stop] = col_ws[:, start:stop]
        out += [own_rows[i:i + 1], generator.synthesis(mixed, noise=False).float().cpu()]
    return torch.cat(out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: a Gaussian z keeps its typical norm on the way, which a
    straight line through the low-density middle of the sphere would not."""
    if t == 0:
        return a.clone()
    cos = (a / a.norm(dim=-1, keepdim=True) * (b / b.norm(dim=-1, keepdim=True))).sum(-1)
    omega = torch.arccos(cos.clamp(-1, 1))[..., None]
    if float(torch.sin(omega).abs().min()) < 1e-6:  # (anti)parallel: sin(omega) would be 0
        # Parallel: the line is the arc. Antiparallel (never from two random seeds) has no
        # one great circle; the straight line through the origin is what is left.
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _labels(label: Optional[int], num: int, device) -> dict:
    """The `labels` keyword for `num` images of class `label`; none for unconditional use."""
    if label is None:
        return {}
    return {"labels": torch.full((num,), label, dtype=torch.long, device=device)}


@torch.no_grad()
def interpolation_frames(generator: nn.Module, seeds: list, frames: int,
                         truncation: Optional[float] = None,
                         truncate_z: Optional[float] = None,
                         label: Optional[int] = None) -> torch.Tensor:
    """`frames` images from each seed toward the next, and from the last back to the first,
    so the walk loops: len(seeds) * frames images in [-1, 1].

    Models with a mapping network walk linearly in w (after truncation), where StyleGAN's
    interpolations are smooth; others walk spherically in z. Frame 0 is the image
    `gans sample --seed SEEDS[0] --num 1` writes, and every frame uses the same noise maps
    (those of that seed), so nothing flickers.
    """
    if len(seeds) < 2:
        raise GansError("--interpolate needs at least two --seeds, e.g. --seeds 0,1,2,3")
    if frames < 2:
        raise GansError(f"--frames must be at least 2 (frames from one seed to the next), "
                        f"got {frames}")
    options = _check_truncation(generator, truncation)
    device = next(generator.parameters()).device
    z = torch.cat([latents(1, generator.latent_dim, seed, truncate_z) for seed in seeds])
    z = z.to(device)
    in_w = supports_style_mixing(generator)
    # One seed at a time, as `gans sample --num 1` maps it: a batch would round differently.
    one_label = _labels(label, 1, device)
    points = torch.cat([generator.mapping(one, options.get("truncation_psi", 1.0), **one_label)
                        for one in z.split(1)]) if in_w else z
    images = []
    for i in range(len(seeds)):
        start, end = points[i:i + 1], points[(i + 1) % len(seeds)][None]
        for step in range(frames):
            t = step / frames
            with seeded_noise(seeds[0], device):
                if in_w:
                    w = start if t == 0 else torch.lerp(start, end, t)
                    image = generator.synthesis(generator.broadcast(w))
                else:
                    image = generator(slerp(start, end, t), **one_label, **options)
            images.append(image.float().cpu())
    return torch.cat(images)


def write_animation(images: torch.Tensor, out: str, fps: float, frames: int,
                    provenance: Optional[dict] = None) -> Path:
    """An interpolation as .gif (Pillow), .mp4 (PyAV, where installed) or .png (a grid with
    one row per pair of seeds)."""
    from gans.data import as_unit
    from gans.sampling.provenance import make_info, save_image, to_pil

    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in (".gif", ".mp4", ".png"):
        raise GansError(f"--out {out}: --interpolate writes a .gif, an .mp4 or a .png grid of "
                        "the frames")
    if not fps > 0:
        raise GansError(f"--fps must be above 0, got {fps}")
    if suffix == ".mp4":
        try:
            import av  # noqa: F401  (the only mp4 writer used)
        except ImportError:
            raise GansError("--out .mp4 needs PyAV: pip install av, or write a .gif") from None
    ensure_writable_folder(target.parent, "pass --out in a writable folder")
    info = make_info("interpolation", **(provenance or {}))
    images = as_unit(images)
    if suffix == ".png":
        save_image(images, target, info, nrow=frames)
    elif suffix == ".gif":
        pictures = [to_pil(image) for image in images]
        comment = json.dumps(info).encode()
        atomic_write(target, lambda f: pictures[0].save(
            f, format="gif", save_all=True, append_images=pictures[1:], loop=0,
            duration=round(1000 / fps), comment=comment))
    else:
        video = images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)
        if video.shape[-1] == 1:
            video = video.expand(-1, -1, -1, 3)
        # H.264 wants even sides: an odd one gets a row or column of black.
        pad = [0, 0, 0, video.shape[2] % 2, 0, video.shape[1] % 2]
        video = torch.nn.functional.pad(video, pad).contiguous().numpy()
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}.mp4"
        try:
            _write_mp4(tmp, video, fps, json.dumps(info))
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return target


def _write_mp4(path: Path, video, fps: float, comment: str) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), mode="w") as container:
        container.metadata["comment"] = comment  # ffprobe shows it; gans inspect reads images
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = video.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for array in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def parse_seeds(text: str) -> list:
    """"1,2,5-7" -> [1, 2, 5, 6, 7]."""
    seeds = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high) + 1) if high else [int(low)]
    except ValueError:
        raise GansError(f"--seeds {text!r}: expected whole numbers and ranges, "
                        "e.g. 1,2,3,4 or 0-7") from None
    if not seeds:
        raise GansError(f"--seeds {text!r}: give at least one seed, e.g. 1,2,3,4")
    return seeds


def write_samples(images: torch.Tensor, out: str, nrow: Optional[int] = None,
                  seed=0, provenance: Optional[dict] = None, kind: str = "grid") -> list[Path]:
    """A grid at `out`, or one PNG per image when `out` ends with a slash or is a folder; each
    file carries `provenance` (make_info's arguments) as text chunks."""
    from gans.data import as_unit
    from gans.sampling.provenance import make_info, save_image

    target = Path(out)
    as_folder = out.endswith(("/", os.sep)) or target.is_dir()
    folder = target if as_folder else target.parent
    if not as_folder and target.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise GansError(f"--out {out}: give a .png (or .jpg) file for a grid, or a folder "
                        "ending with / for single images")
    ensure_writable_folder(folder, "pass --out in a writable folder")
    provenance = provenance or {}
    images = as_unit(images)
    if as_folder:
        written = []
        for i, image in enumerate(images):
            path = folder / f"seed{seed}_{i:05d}.png"
            save_image(image, path, make_info("single", seeds=seed, index=i, **provenance))
            written.append(path)
        return written
    rows = nrow or max(1, int(len(images) ** 0.5))
    fmt = "png" if target.suffix.lower() == ".png" else "jpeg"
    save_image(images, target, make_info(kind, seeds=seed, **provenance), nrow=rows, fmt=fmt)
    return [target]
