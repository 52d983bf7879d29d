"""Where an image came from, written into the image: PNG text chunks (`gans:*` keys) that
`gans inspect` prints back. A picture shared without its run directory still names the
checkpoint (by SHA-256), the recipe (by hash), the seeds and the sampling options."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Optional

import torch

from gans.errors import GansError
from gans.files import atomic_write
from gans.runlog import RunLog, read_run
from gans.training.clock import Clock

PREFIX = "gans:"
# Printed first, in this order, by `gans inspect`; any other gans:* key follows.
ORDER = ("version", "kind", "checkpoint", "checkpoint_sha256", "weights", "recipe_sha256",
         "recipe_name", "seeds", "index", "class", "truncation", "truncate_z", "run", "step",
         "date")

_hashes: dict = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file read in 1 MiB blocks (checkpoints can be gigabytes), once per
    process for an unchanged file."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def recipe_sha256(recipe: dict) -> str:
    """Hash of the canonical JSON of a recipe: equal for equal recipes, whatever the YAML
    layout, key order or `extends:` chain they came from."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def make_info(kind: str, recipe: Optional[dict] = None, checkpoint: Optional[Path] = None,
              checkpoint_sha256: Optional[str] = None, **fields) -> dict:
    """The `gans:*` chunks of one image; fields given as None are left out."""
    from gans import __version__

    info = {"version": __version__, "kind": kind}
    if checkpoint is not None:
        info["checkpoint"] = Path(checkpoint).name
        info["checkpoint_sha256"] = checkpoint_sha256 or file_sha256(checkpoint)
    if recipe is not None:
        info["recipe_sha256"] = recipe_sha256(recipe)
        info["recipe_name"] = recipe.get("name")
    info.update(fields)
    info["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {PREFIX + k: _text(v) for k, v in info.items() if v is not None}


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def to_pil(images: torch.Tensor, nrow: Optional[int] = None):
    """Images in [0, 1] (one, or a batch laid out as a grid) as a PIL image, with the same
    pixels torchvision's save_image writes."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=nrow or 8) if images.dim() == 4 else images
    array = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    array = array.numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def save_image(images: torch.Tensor, path: Path, info: dict, nrow: Optional[int] = None,
               fmt: str = "png") -> None:
    """Like torchvision's save_image, atomically, with `info` as PNG text chunks (a JPEG gets
    them as one JSON comment: JPEG has no text chunks)."""
    atomic_write(Path(path), lambda f: save_pil(to_pil(images, nrow), f, info, fmt))


def save_pil(image, f, info: dict, fmt: str = "png") -> None:
    from PIL.PngImagePlugin import PngInfo

    if fmt == "png":
        chunks = PngInfo()
        for key, value in info.items():
            chunks.add_text(key, value)  # tEXt, or iTXt where the value is not Latin-1
        image.save(f, format="png", pnginfo=chunks)
    else:
        image.save(f, format="jpeg", quality=95, comment=json.dumps(info).encode())


def read_info(path: Path) -> dict:
    """The `gans:*` chunks of an image (empty when it has none): PNG text chunks, or the JSON
    comment of a JPEG or GIF. A missing file or another kind of file is a GansError."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise GansError(f"{path} not found; pass a PNG written by gans")
    try:
        with Image.open(path) as image:
            image.load()  # text chunks after the pixel data are read only here
            found = image.format
            texts = dict(getattr(image, "text", {}) or {}) if found == "PNG" else {}
            comment = image.info.get("comment") if found in ("JPEG", "GIF") else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise GansError(f"{path} is not a readable image ({exc.__class__.__name__}); "
                        "pass a PNG written by gans") from None
    if found not in ("PNG", "JPEG", "GIF"):
        raise GansError(f"{path} is a {found} image, which gans never writes; "
                        "pass a PNG written by gans")
    if comment:
        try:
            parsed = json.loads(comment)
            texts = parsed if isinstance(parsed, dict) else {}
        except (ValueError, UnicodeDecodeError):
            texts = {}
    return {k[len(PREFIX):]: str(v) for k, v in texts.items() if str(k).startswith(PREFIX)}


def format_info(info: dict) -> str:
    keys = [k for k in ORDER if k in info] + sorted(k for k in info if k not in ORDER)
    return "\n".join(f"{PREFIX}{k}: {info[k]}" for k in keys)



# ----------------------------------------------------------------------------- model card

# name -> (title, images per split, licence, where to read more)
KNOWN_DATASETS = {
    "fashion-mnist": ("Fashion-MNIST (Zalando Research)", {"train": 60000, "test": 10000},
                      "MIT", "https://github.com/zalandoresearch/fashion-mnist"),
    "mnist": ("MNIST", {"train": 60000, "test": 10000}, "CC BY-SA 3.0",
              "http://yann.lecun.com/exdb/mnist/"),
    "cifar10": ("CIFAR-10", {"train": 50000, "test": 10000}, "see the dataset page",
                "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "celeba": ("CelebA", {"train": 162770, "valid": 19867, "test": 19962},
               "non-commercial research only",
               "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"),
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def model_card(checkpoint: Path, trust: bool = False) -> str:
    """A Markdown model card: everything comes from the checkpoint and, where it lies beside
    it, the run directory's TensorBoard log; what neither holds is written as unknown."""
    from gans.models.build import build_networks
    from gans.objectives.base import build_objective
    from gans.recipe import dump
    from gans.sampling.checkpoint import checkpoint_recipe, read_checkpoint

    checkpoint = Path(checkpoint)
    ckpt = read_checkpoint(checkpoint, trust=trust)
    recipe = checkpoint_recipe(ckpt["hyper_parameters"]["recipe"], checkpoint, trust)
    generator, discriminator = build_networks(recipe)
    train, data = recipe.train, recipe.data
    clock = Clock.of(recipe, world_size=_devices(recipe))
    steps = clock.g_steps(int(ckpt.get("global_step", 0)))
    log = read_run(_run_dir(checkpoint))
    kimg = log.last("kimg")
    if kimg is None:
        kimg = clock.kimg_at(steps)
    has_ema = any(k.startswith("g_ema.module.") for k in ckpt["state_dict"])
    gen_name = recipe.model.generator.get("name", "?")
    translates = getattr(generator, "translates_images", False)
    classes = ckpt["hyper_parameters"].get("class_names") or []
    kind = ("An image-to-image" if translates else "A class-conditional" if classes
            else "An unconditional")
    lines = [f"# Model card: {recipe.name}", "",
             f"{kind} GAN generator ({gen_name}) trained with gans "
             f"{_version()} on {_data_title(data)}; it makes {data.resolution}x{data.resolution} "
             f"images with {data.channels} channel{'s' if data.channels > 1 else ''} from "
             + ("input images (sketches) of the same size" if translates else "random noise")
             + (f" and a class ({', '.join(classes)})" if classes else "")
             + ".", "",
             "## Model", "",
             f"- Generator: `{gen_name}`, {_params(generator)} parameters, "
             + ("no latent (dropout is its noise)" if translates
                else f"latent size {generator.latent_dim}") + "; discriminator: "
             f"`{recipe.model.discriminator.get('name', '?')}`, {_params(discriminator)} "
             "parameters.",
             "- Sampling weights: " + (f"EMA of the generator (decay {train.ema})." if has_ema
                                       else "the trained generator (no EMA)."),
             f"- Checkpoint: `{checkpoint.name}`, SHA-256 `{file_sha256(checkpoint)}`.",
             f"- Recipe SHA-256 (canonical JSON): `{recipe_sha256(recipe.to_dict())}`.",
             f"- Objective: {build_objective(recipe).describe()}"
             + (f"; augmentation {', '.join(recipe.augment.policy)}" if recipe.augment.policy
                else "") + ".", "",
             "## Data", ""]
    lines += _data_lines(data)
    lines += ["", "## Recipe", "", "```yaml", dump(recipe).rstrip(), "```", "",
              "## Training compute and time", "",
              f"- Steps: {steps} generator updates of {train.batch_size} images "
              f"({train.n_critic} discriminator update{'s' if train.n_critic > 1 else ''} each); "
              f"{kimg:g} kimg (thousands of real images shown to the discriminator)"
              + (f"; the recipe planned {train.steps} steps" if steps < train.steps else "")
              + ".",
              f"- Hardware (recipe): accelerator {recipe.trainer.get('accelerator', 'auto')}, "
              f"devices {recipe.trainer.get('devices', 'auto')}, precision "
              f"{recipe.trainer.get('precision', '32-true')}."]
    if log.sessions:
        hours = log.seconds / 3600
        rate = log.last("images_per_sec")
        lines.append(f"- Wall-clock time: {_duration(log.seconds)} (from the TensorBoard log, "
                     f"first to last event of each session)"
                     + (f"; {rate:.0f} images/s at the end" if rate else "") + ".")
        lines.append(f"- Energy: not measured. Time x power of the device: at 300 W (a typical "
                     f"data-centre GPU board) that is about {0.3 * hours:.2g} kWh; at 30 W (a "
                     f"laptop CPU) about {0.03 * hours:.2g} kWh.")
    else:
        lines.append("- Wall-clock time: unknown (no TensorBoard log beside the checkpoint).")
        lines.append("- Energy: unknown; it is the training time multiplied by the device's "
                     "power.")
    lines += ["", "## Metrics", ""]
    lines += _metric_lines(recipe, log, checkpoint)
    lines += ["", "## Intended use", "",
              "Research and teaching: studying how GANs train, comparing recipes, making "
              "example images in the style of the training data for demonstrations. The "
              "images are synthetic and unlabelled; they are not a substitute for real data "
              "when measuring anything about the world.",
              "", "## Limitations", "",
              f"- It only makes images like its training data, at {data.resolution}px; outside "
              "that it has no notion of anything.",
              "- GANs drop modes: some kinds of training image may be rare or missing among the "
              "samples even when FID looks good; FID measures the whole distribution, not each "
              "image, and is only comparable under the same protocol.",
              "- Samples can contain artefacts and near-copies of training images; check before "
              "reuse.",
              "", "## Risks", "",
              "- Misuse as fake imagery: generated pictures can be passed off as real ones. The "
              "PNGs gans writes carry their provenance (`gans inspect`), but text chunks are "
              "easily stripped, so they prove origin only when present.",
              "- Biases of the data: the generator reproduces, and can amplify, whatever the "
              "training set over- or under-represents (for face data: age, skin tone, gender "
              "presentation); samples must not be read as representative of people.",
              "- Energy used: training (above) and sampling at scale cost electricity and the "
              "emissions of its source; reuse checkpoints rather than retraining.",
              "- Licence: the data's licence (above) may restrict what the weights and samples "
              "may be used for."]
    return "\n".join(lines) + "\n"


def _version() -> str:
    from gans import __version__

    return __version__


def _params(network) -> str:
    count = sum(p.numel() for p in network.parameters())
    return f"{count / 1e6:.2f} M" if count >= 1e5 else f"{count:,}"


def _devices(recipe) -> int:
    devices = recipe.trainer.get("devices", 1)
    return devices if isinstance(devices, int) and devices > 0 else 1


def _data_title(data) -> str:
    known = KNOWN_DATASETS.get(data.name)
    return known[0] if known else f"the images in {data.root}" if data.name == "folder" \
        else data.name


def _data_lines(data) -> list:
    known = KNOWN_DATASETS.get(data.name)
    limit = f", limited to the first {data.limit}" if data.limit else ""
    if known:
        title, sizes, licence, url = known
        size = sizes.get(data.split)
        if size is not None and data.limit:
            size = min(size, data.limit)
        return [f"- Name: {title}, split `{data.split}` ({url}).",
                f"- Size: {size if size is not None else 'unknown'} images{limit}, used at "
                f"{data.resolution}x{data.resolution}, {data.channels} channel(s).",
                f"- Licence: {licence}."]
    if data.name != "folder":
        return [f"- Name: `{data.name}` (a registered dataset gans has no card entry for), "
                f"split `{data.split}`.", "- Size: unknown.", "- Licence: unknown; see the "
                "dataset's own documentation."]
    root = Path(data.root or ".")
    if root.is_dir():
        count = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if data.limit:
            count = min(count, data.limit)
        size = f"{count} images{limit}"
    else:
        size = "unknown (the folder is not on this machine)"
    source, licence = _folder_source(root)
    return [f"- Name: image folder `{data.root}`" + (f" ({source})" if source else "") + ".",
            f"- Size: {size}, used at {data.resolution}x{data.resolution}, "
            f"{data.channels} channel(s).",
            f"- Licence: {licence}."]


def _folder_source(root: Path) -> tuple:
    """(source, licence) from a SOURCE.json or LICENSE.txt in the folder or the one above."""
    for folder in (root, root.parent):
        info = folder / "SOURCE.json"
        if info.is_file():
            try:
                meta = json.loads(info.read_text())
                return meta.get("source"), f"{meta['licence']} (see {folder / 'LICENSE.txt'})"
            except (ValueError, KeyError, OSError, TypeError, AttributeError):
                pass
        text = folder / "LICENSE.txt"
        if text.is_file():
            return None, f"see {text}"
    return None, "the user's; see the LICENSE beside the data"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 120 else f"{minutes:.0f} min" if minutes < 120 \
        else f"{minutes / 60:.1f} h"


def _run_dir(checkpoint: Path) -> Path:
    """The run directory a checkpoint sits in (runs/<name>/<version>/checkpoints/), or the
    checkpoint's own folder when it has been moved out of one."""
    folder = Path(checkpoint).resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def _metric_lines(recipe, log: RunLog, checkpoint: Path) -> list:
    fids = [(step, value) for step, _, value in log.scalars("fid")]
    if not fids:
        return ["No FID was recorded during training"
                + ("" if recipe.metrics.fid_every else " (metrics.fid_every is 0)")
                + f". Measure it with `gans eval {checkpoint}`, which prints the figures with "
                  "their protocol."]
    last_step, last = fids[-1]
    best_step, best = min(fids, key=lambda item: item[1])
    m = recipe.metrics
    protocol = log.text("fid/protocol") or (
        f"{m.fid_num_fake} generated vs {m.fid_num_real} real images of the "
        f"`{m.fid_reference_split}` split at {recipe.data.resolution}px, Inception-v3, "
        f"{m.inception_precision} (from the recipe)")
    return ["| metric | value | at generator step |", "|---|---|---|",
            f"| FID, last | {last:.2f} | {last_step} |",
            f"| FID, best | {best:.2f} | {best_step} |", "",
            f"Protocol: {protocol}. FID during training uses fixed latents and the sampling "
            "generator; figures are comparable only under the same protocol "
            f"(`gans eval {checkpoint.name}` recomputes them)."]


def add_text_chunks(png: bytes, info: dict) -> bytes:
    """`png` (the bytes of a PNG made elsewhere, e.g. a plot) with `info` inserted as text
    chunks right after the header, pixels untouched."""
    import struct
    import zlib

    signature = b"\x89PNG\r\n\x1a\n"
    if not png.startswith(signature) or png[12:16] != b"IHDR":
        raise GansError("add_text_chunks needs the bytes of a PNG file")
    end_of_header = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    chunks = b""
    for key, value in info.items():
        try:
            kind, data = b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")
        except UnicodeEncodeError:
            kind, data = b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode()
        chunks += struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return png[:end_of_header] + chunks + png[end_of_header:]
