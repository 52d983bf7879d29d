"""Datasets decoded once into uint8 tensors in memory (the DataModule that batches them for
training is gans/training/datamodule.py).

Every source returns `Images(pixels uint8 (N, C, H, W), labels or None, description)` at the
recipe's resolution and channel count; training normalises to [-1, 1] in the step, so the data
path stays cheap and the same tensors feed FID's real statistics.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torchvision.transforms.v2 import functional as TF

from gans.cache import cache_dir
from gans.errors import GansError
from gans.files import atomic_write
from gans.registry import DATASETS

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# The classes of the datasets that carry labels, in label order: what `data.conditional` trains
# on and `gans sample --class` names.
CLASS_NAMES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(d) for d in range(10)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
}


def class_names(data) -> tuple:
    """The class names of a conditional data section, in label order; () for an unconditional
    one. A run records them in `data.classes`, so a checkpoint needs no data to name them."""
    if not data.conditional:
        return ()
    if data.classes:
        return tuple(data.classes)
    if data.name == "folder":
        return folder_labels(_folder(data.root), data.labels)[0]
    if data.name not in CLASS_NAMES:
        raise GansError(f"data.conditional needs a dataset with labels ({', '.join(CLASS_NAMES)}"
                        f", or folder with class subfolders or data.labels), not {data.name!r}; "
                        "set data.conditional: false or change data.name")
    return CLASS_NAMES[data.name]


@dataclass
class Images:
    pixels: torch.Tensor  # uint8 (N, C, H, W)
    labels: Optional[torch.Tensor]
    description: str
    classes: tuple = ()  # the names of the labels, in label order, where the source knows them
    # Paired data (pix2pix): the input image of each target in `pixels`, uint8 (N, C, H, W).
    conditions: Optional[torch.Tensor] = None

    def fingerprint(self) -> str:
        """Changes whenever the decoded images change (content, order, size or count).

        Labels stay out: cached features are of images, and per-class metrics select them by
        the labels of the data at hand, so relabelling needs no new features."""
        digest = hashlib.sha256(str(tuple(self.pixels.shape)).encode())
        digest.update(self.pixels.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def load_images(data, split: Optional[str] = None) -> Images:
    """The images a data section names, for `split` (default: the section's own)."""
    source = DATASETS.get(data.name, where="key 'data.name'")
    if data.conditional and data.name != "folder":
        class_names(data)  # a dataset without labels fails now, before a download
    # The folder labels its images only when asked: unconditional, it reads what it always read.
    options = {"conditional": data.conditional, "labels": data.labels} \
        if data.name == "folder" else {}
    if is_derived(source):
        options["source"] = data.source
    raw = source(root=data.root, split=split or data.split, resolution=data.resolution,
                 **options)
    pixels = to_resolution(raw.pixels, data.resolution, data.channels)
    labels, conditions = raw.labels, raw.conditions
    if conditions is not None:
        conditions = to_resolution(conditions, data.resolution, data.channels)
    classes = raw.classes or (CLASS_NAMES.get(data.name, ()) if labels is not None else ())
    if data.conditional and data.classes and classes and tuple(data.classes) != tuple(classes):
        raise GansError(f"data.classes records {_listed(data.classes)} but {raw.description} "
                        f"has {_listed(classes)}; restore the data the run trained on, or start "
                        "a new run (without data.classes)")
    if data.limit is not None:
        pixels = pixels[: data.limit]
        labels = labels[: data.limit] if labels is not None else None
        conditions = conditions[: data.limit] if conditions is not None else None
        if data.conditional and labels is not None and classes:
            absent = sorted(set(range(len(classes))) - set(torch.as_tensor(labels).tolist()))
            if absent:
                raise GansError(f"data.limit={data.limit} keeps the first {data.limit} images, "
                                f"which hold no image of class {_listed(classes[i] for i in absent)}"
                                "; raise data.limit or drop it")
    return Images(pixels.contiguous(), labels, raw.description, tuple(classes),
                  None if conditions is None else conditions.contiguous())


def _listed(names, shown: int = 6) -> str:
    names = list(names)
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(repr(n) for n in names[:shown]) + more


def is_paired(data) -> bool:
    """Whether a data section names paired data: (input image, target image) per example."""
    return bool(getattr(DATASETS.get(data.name), "paired", False))


def is_derived(source) -> bool:
    """Whether a dataset source is built from another dataset, named in `data.source`."""
    return bool(getattr(source, "derived", False))


def image_source(data) -> str:
    """The dataset whose images a data section trains towards: a derived dataset's targets are
    its source's own images (edges of Fashion-MNIST aim at Fashion-MNIST)."""
    return data.source if is_derived(DATASETS.get(data.name)) else data.name


def as_signed(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels -> [-1, 1] in `dtype`: the range generators make and discriminators see."""
    return pixels.to(dtype) / 127.5 - 1.0


def as_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]: what image writers (torchvision's save_image, PIL) take."""
    return (images + 1) / 2


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 pixels, rounded as saving to PNG would: `as_signed`'s pixels come back
    exactly."""
    return ((images.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_resolution(pixels: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> square `resolution`, `channels`; centre crop keeps aspect."""
    if pixels.size(1) != channels:
        pixels = (pixels.expand(-1, 3, -1, -1) if channels == 3
                  else torch.cat([_gray(c) for c in pixels.split(4096)]))
    h, w = pixels.shape[-2:]
    if h != w:
        pixels = TF.center_crop(pixels, [min(h, w)])
    if pixels.size(-1) != resolution:
        chunks = [TF.resize(c, [resolution, resolution], antialias=True)
                  for c in pixels.split(4096)]
        pixels = torch.cat(chunks)
    return pixels


def _gray(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 1, H, W) with Pillow's "L" weights, rounded.

    torchvision's rgb_to_grayscale truncates with weights summing to 0.9999, so a gray image
    saved as RGB came back one level darker (255 -> 254).
    """
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (rgb[:, :3].float() * weights).sum(1, keepdim=True).round().clamp(0, 255) \
        .to(torch.uint8)


# ----------------------------------------------------------------------------- sources


@DATASETS.register("fashion-mnist")
def fashion_mnist(root: Optional[str], split: str, resolution: int) -> Images:
    """Looks in data.root, then the Debian package, then downloads (when online)."""
    from torchvision.datasets import FashionMNIST

    tried = []
    for candidate in ([Path(root).expanduser()] if root else []) + [DEBIAN_FASHION_MNIST]:
        found = _idx_root(candidate)
        if found is not None:
            ds = FashionMNIST(str(found), train=split == "train", download=False)
            return Images(ds.data.unsqueeze(1), ds.targets, f"Fashion-MNIST {split} ({candidate})")
        tried.append(str(candidate))
    target = Path(root).expanduser() if root else cache_dir() / "datasets"
    try:
        ds = FashionMNIST(str(target), train=split == "train", download=True)
    except Exception as exc:  # torchvision raises several types for "no network"
        raise GansError(
            f"Fashion-MNIST not found in {' or '.join(tried) or '(no data.root set)'} and the "
            f"download to {target} failed ({exc.__class__.__name__}); install the Debian package "
            f"(apt-get install dataset-fashion-mnist), or put the four idx files in a folder "
            f"and set data.root to it") from None
    return Images(ds.data.unsqueeze(1), ds.targets, f"Fashion-MNIST {split} (downloaded)")


def _idx_root(folder: Path) -> Optional[Path]:
    """A root that torchvision's FashionMNIST reads without downloading, or None.

    torchvision wants the idx files extracted under <root>/FashionMNIST/raw/; the Debian
    package (and most mirrors) ship them gzipped, so those are extracted once into the cache.
    """
    if all((folder / "FashionMNIST" / "raw" / f).exists() for f in FASHION_MNIST_FILES):
        return folder
    for raw_dir in (folder, folder / "FashionMNIST" / "raw", folder / "raw"):
        if all((raw_dir / f"{f}.gz").exists() for f in FASHION_MNIST_FILES):
            key = hashlib.sha256(str(raw_dir.resolve()).encode()).hexdigest()[:12]
            extracted = cache_dir() / "datasets" / f"fashion-mnist-{key}"
            out = extracted / "FashionMNIST" / "raw"
            if not all((out / f).exists() for f in FASHION_MNIST_FILES):
                _extract_gz(raw_dir, out)
            return extracted
    return None


def _extract_gz(src: Path, out: Path) -> None:
    import gzip
    import shutil

    for name in FASHION_MNIST_FILES:
        with gzip.open(src / f"{name}.gz", "rb") as fin:
            atomic_write(out / name, lambda f: shutil.copyfileobj(fin, f))


def _torchvision_source(cls_name: str, label: str, split_arg):
    def load(root: Optional[str], split: str, resolution: int) -> Images:
        import torchvision.datasets as tvd

        target = Path(root).expanduser() if root else cache_dir() / "datasets"
        try:
            ds = getattr(tvd, cls_name)(str(target), download=True, **split_arg(split))
        except Exception as exc:
            raise GansError(f"{label} is not in {target} and could not be downloaded "
                            f"({exc.__class__.__name__}: {str(exc)[:80]}); put torchvision's "
                            f"{cls_name} files under data.root or connect to the internet") from None
        data = getattr(ds, "data", None)
        if data is not None:
            pixels = torch.as_tensor(data)
            pixels = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)
            labels = torch.as_tensor(getattr(ds, "targets", [])) if hasattr(ds, "targets") else None
        else:
            pixels = torch.stack([TF.pil_to_tensor(img.convert("RGB")) for img, _ in ds])
            labels = None
        return Images(pixels, labels, f"{label} {split}")

    return load


DATASETS.register("mnist")(_torchvision_source("MNIST", "MNIST", lambda s: {"train": s == "train"}))
DATASETS.register("cifar10")(_torchvision_source("CIFAR10", "CIFAR-10",
                                                 lambda s: {"train": s == "train"}))
DATASETS.register("celeba")(_torchvision_source("CelebA", "CelebA", lambda s: {"split": s}))


@DATASETS.register("folder")
def image_folder(root: Optional[str], split: str, resolution: int, conditional: bool = False,
                 labels: Optional[str] = None) -> Images:
    """Every image under data.root, recursively; other files are ignored. One split only.

    Images are decoded to 8-bit RGB (`_decoded_rgb`): transparent pixels are composited on
    white, palettes go through RGBA, 16-bit images are scaled to 8 bits. Files that cannot be
    decoded are skipped and reported in one warning. `conditional`: each image also gets its
    class (`folder_labels`); the images and their order are the same either way.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    folder = _folder(root)
    paths = _image_paths(folder)
    names, label_of = folder_labels(folder, labels, paths) if conditional else ((), {})
    images, kept, skipped = [], [], []
    for path in paths:
        try:
            images.append(_decoded_rgb(path))
            kept.append(path)
        except _Unusable as exc:
            skipped.append(f"{path.relative_to(folder)} ({exc})")
    examples = f"e.g. {'; '.join(skipped[:2])}" if skipped else ""
    if not images:
        found = (f"; {len(skipped)} image file(s) skipped, {examples}" if skipped else "")
        raise GansError(f"data.root {folder} holds no readable image "
                        f"({', '.join(IMG_EXTENSIONS)}){found}; point data.root at your images")
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} unreadable image file(s), {examples}; "
                      "fix or remove them to train on them", stacklevel=2)
    # Folders mix sizes: each image is cropped and resized on its own so the stack is uniform.
    pixels = torch.stack([TF.resize(TF.center_crop(t, [min(t.shape[-2:])]),
                                    [resolution, resolution], antialias=True) for t in images])
    if not conditional:
        return Images(pixels, None, f"folder {folder} ({len(images)} images)")
    label_list = [label_of[path] for path in kept]
    present = set(label_list)
    empty = [name for index, name in enumerate(names) if index not in present]
    if empty:
        where = "in data.labels" if labels else "subfolder"
        raise GansError(f"class {_listed(empty)} ({where}) has no readable image under {folder}"
                        f"{'; ' + examples if skipped else ''}; add images of it or remove the "
                        "class")
    return Images(pixels, torch.tensor(label_list, dtype=torch.long),
                  f"folder {folder} ({len(images)} images, {len(names)} classes)", tuple(names))


def _folder(root: Optional[str]) -> Path:
    if not root:
        raise GansError("data.name is folder but data.root is not set; "
                        "pass --set data.root=DIR (a folder of images, searched recursively)")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise GansError(f"data.root {folder} is not a folder; set data.root to a folder of images")
    return folder


def _image_paths(folder: Path) -> list:
    """The image files under `folder`, recursively, sorted: the folder source's order."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    # "._name.png" files are the macOS resource forks that copies from a Mac leave beside each
    # image: never images, so ignored like any other non-image file.
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS
                  and not p.name.startswith("._") and p.is_file())


def folder_labels(folder: Path, labels: Optional[str],
                  paths: Optional[list] = None) -> tuple[tuple, dict]:
    """(class names in label order, {image path: label}) of a conditional folder.

    Without a labels file the classes are the immediate subfolders, sorted by name, and an
    image's class is the subfolder it lies in, at any depth (torchvision's ImageFolder). With
    one (`data.labels`, relative to the folder), classes and labels come from the file:
    a CSV with `file,class` columns (class names, sorted like subfolders), or StyleGAN2-ADA's
    dataset.json, {"labels": [["path", index], ...]}, with optional "class_names". Every image
    must have a label, and every labelled file must be an image under the folder.
    """
    paths = _image_paths(folder) if paths is None else paths
    if labels:
        return _labels_file(folder, Path(labels), paths)
    names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if not names:
        raise GansError(f"data.conditional: {folder} has no subfolders (one per class) and "
                        "data.labels is not set; put each class's images in a subfolder named "
                        "after the class, set data.labels to a labels file, or set "
                        "data.conditional: false")
    loose = [p.name for p in paths if p.parent == folder]
    if loose:
        raise GansError(f"data.conditional: {len(loose)} image(s) lie directly in {folder}, "
                        f"outside any class subfolder (e.g. {', '.join(loose[:3])}); move each "
                        "into the subfolder of its class, or set data.labels to a labels file")
    index = {name: i for i, name in enumerate(names)}
    return names, {p: index[p.relative_to(folder).parts[0]] for p in paths}


def _labels_file(folder: Path, name: Path, paths: list) -> tuple[tuple, dict]:
    file = folder / name.expanduser()
    shown = f"data.labels {file}"
    if not file.is_file():
        raise GansError(f"{shown} not found; give the labels file's path relative to data.root "
                        "(e.g. labels.csv or dataset.json)")
    if file.suffix.lower() not in (".csv", ".json"):
        raise GansError(f"{shown}: a labels file is .csv (file,class columns) or .json "
                        "(StyleGAN2-ADA's dataset.json); convert it to one of them")
    try:
        text = file.read_text(encoding="utf-8-sig")  # -sig: Excel starts its CSVs with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise GansError(f"{shown} could not be read ({exc.__class__.__name__}); save it as "
                        "UTF-8 text") from None
    rows = _csv_rows(text, shown) if file.suffix.lower() == ".csv" else _json_rows(text, shown)
    names, rows = rows
    known = {p.relative_to(folder).as_posix(): p for p in paths}
    label_of, seen, missing = {}, set(), []
    for relative, label in rows:
        relative = relative.replace("\\", "/").removeprefix("./")
        if relative in seen:
            raise GansError(f"{shown} lists {relative!r} twice; keep one row per image")
        seen.add(relative)
        if relative not in known:
            missing.append(relative)
        else:
            label_of[known[relative]] = label
    if missing:
        raise GansError(f"{shown} names {len(missing)} file(s) that are not images under "
                        f"{folder} (e.g. {', '.join(missing[:3])}); fix those paths (relative "
                        "to data.root) or remove their rows")
    unlabelled = [k for k, p in known.items() if p not in label_of]
    if unlabelled:
        raise GansError(f"{shown} has no label for {len(unlabelled)} image(s) under {folder} "
                        f"(e.g. {', '.join(unlabelled[:3])}); add rows for them or move them "
                        "out of data.root")
    return names, label_of


def _csv_rows(text: str, shown: str) -> tuple[tuple, list]:
    import csv

    try:
        table = list(csv.DictReader(text.splitlines()))
        columns = table[0].keys() if table else []
    except csv.Error as exc:
        raise GansError(f"{shown} is not a readable CSV ({exc}); write one row per image "
                        "under a header line file,class") from None
    if not table or "file" not in columns or "class" not in columns:
        raise GansError(f"{shown} needs a header line with columns file and class and one row "
                        f"per image, got columns {', '.join(map(str, columns)) or 'none'}")
    bad = next((i for i, row in enumerate(table, 2)
                if not (row["file"] or "").strip() or not (row["class"] or "").strip()), None)
    if bad is not None:
        raise GansError(f"{shown} line {bad}: every row needs a file and a class")
    names = tuple(sorted({row["class"].strip() for row in table}))
    index = {name: i for i, name in enumerate(names)}
    return names, [(row["file"].strip(), index[row["class"].strip()]) for row in table]


def _json_rows(text: str, shown: str) -> tuple[tuple, list]:
    import json

    try:
        content = json.loads(text)
    except ValueError as exc:
        raise GansError(f"{shown} is not valid JSON ({str(exc)[:80]}); write "
                        '{"labels": [["path.png", 0], ...]}') from None
    rows = content.get("labels") if isinstance(content, dict) else None
    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], str)
            and isinstance(r[1], int) and not isinstance(r[1], bool) and r[1] >= 0
            for r in rows):
        raise GansError(f"{shown} needs \"labels\": a list of [path, class index] pairs (index "
                        "0, 1, ...), as StyleGAN2-ADA's dataset_tool writes it")
    count = max(r[1] for r in rows) + 1
    names = content.get("class_names")
    if names is None:
        names = [str(i) for i in range(count)]
    if not (isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names)
            and len(set(names)) == len(names) and len(names) >= count):
        raise GansError(f"{shown}: \"class_names\" must list {count} or more distinct names, "
                        "one per class index, or be left out (the classes are then named 0, 1, "
                        "...)")
    return tuple(names), [tuple(r) for r in rows]


BACKGROUND = (255, 255, 255)  # what transparent pixels of a folder image become: white


class _Unusable(Exception):
    """An image file the folder source skips; the message is the reason, a few words."""


def _decoded_rgb(path) -> torch.Tensor:
    """uint8 (3, H, W) of one image file (a Path, or its bytes: an upload), or `_Unusable`
    saying why not."""
    import io
    import struct

    from PIL import Image, UnidentifiedImageError

    in_memory = isinstance(path, (bytes, bytearray))
    try:
        if (len(path) if in_memory else path.stat().st_size) == 0:
            raise _Unusable("empty file")
        with Image.open(io.BytesIO(path) if in_memory else path) as img:
            return TF.pil_to_tensor(_to_rgb(img))
    except UnidentifiedImageError:
        raise _Unusable("not an image Pillow can read") from None
    # Pillow reports damaged files with any of these, depending on the format and the damage.
    except (OSError, ValueError, SyntaxError, EOFError, struct.error,
            Image.DecompressionBombError) as exc:
        text = str(exc).splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        text = text if in_memory else text.replace(str(path), "the file")
        raise _Unusable(text[:100]) from None


def _to_rgb(img):
    """A Pillow image in any mode -> 8-bit RGB, without clipping or dropping alpha blindly."""
    import numpy as np
    from PIL import Image

    if img.mode.startswith("I"):
        # 16-bit (I;16*) and 32-bit integer (I) grayscale are read on the 16-bit range, as PNG
        # and TIFF store them; Pillow's own convert() would clip everything above 255 to white.
        wide = np.clip(np.asarray(img).astype(np.float64), 0, 65535)
        return Image.fromarray(np.rint(wide / 257).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        raise _Unusable("32-bit float pixels have no fixed range; save it as 8 or 16-bit")
    if img.mode in ("P", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")  # palette and colour-key transparency become an alpha channel
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        background = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


# ----------------------------------------------------------------------------- paired sources
# (input, target) pairs for image-to-image models (pix2pix): `Images.conditions` holds the
# inputs, `pixels` the targets.


def paired_source(derived: bool = False):
    """Marks a dataset source as paired; a derived one also receives `data.source`."""
    def mark(function):
        function.paired, function.derived = True, derived
        return function

    return mark


@DATASETS.register("edges")
@paired_source(derived=True)
def edges(root: Optional[str], split: str, resolution: int, source: Optional[str]) -> Images:
    """Edge maps of any image dataset (`data.source`) as inputs, its images as targets.

    The edges (gans/paired.py: Canny, thinning, specks removed; black lines on white) are
    drawn at the recipe's resolution, once, and cached under the gans cache by the content of
    the source images: a changed source or edge extractor makes new ones.
    """
    from gans import paired

    if not source:
        raise GansError("data.name is edges but data.source is not set; name the dataset to "
                        "draw edges from, e.g. --set data.source=fashion-mnist")
    images_of = DATASETS.get(source, where="key 'data.source'")
    if getattr(images_of, "paired", False):
        raise GansError(f"data.source {source!r} is paired data already; name a dataset of "
                        "images, e.g. fashion-mnist or folder")
    raw = images_of(root=root, split=split, resolution=resolution)
    gray = to_resolution(raw.pixels, resolution, 1)
    key = hashlib.sha256(f"{paired.EDGES_VERSION}/{resolution}/".encode())
    key.update(gray.contiguous().numpy().tobytes())
    cached = cache_dir() / "datasets" / f"edges-{key.hexdigest()[:20]}.pt"
    if cached.exists():
        conditions = torch.load(cached, weights_only=True)
    else:
        conditions = paired.edges_of(gray)
        atomic_write(cached, lambda f: torch.save(conditions, f))
    return Images(to_resolution(raw.pixels, resolution, raw.pixels.size(1)), raw.labels,
                  f"edges of {raw.description}", raw.classes, conditions=conditions)


@DATASETS.register("pairs")
@paired_source()
def image_pairs(root: Optional[str], split: str, resolution: int) -> Images:
    """Pairs from data.root (or data.root/<split> when that folder exists), either as
    pix2pix ships them, one image per pair with the input (A) left and the target (B) right,
    or as two folders A/ and B/ holding files of the same names. Unlike `folder`, an unreadable
    or unmatched file is an error: skipping it would shift the pairing."""
    if not root:
        raise GansError("data.name is pairs but data.root is not set; pass --set data.root=DIR "
                        "(side-by-side AB images, or folders A/ and B/ of matching files)")
    folder = Path(root).expanduser()
    if (folder / split).is_dir():
        folder = folder / split
    if not folder.is_dir():
        raise GansError(f"data.root {folder} is not a folder; set data.root to a folder of pairs")
    if (folder / "A").is_dir() or (folder / "B").is_dir():
        inputs, targets = _two_folders(folder)
    else:
        inputs, targets = _side_by_side(folder)
    pixels = torch.stack([_square(t, resolution) for t in targets])
    conditions = torch.stack([_square(t, resolution) for t in inputs])
    return Images(pixels, None, f"pairs {folder} ({len(pixels)})", conditions=conditions)


def _image_files(folder: Path) -> list:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS
                  and not p.name.startswith("._") and p.is_file())


def _pair_image(path: Path, folder: Path) -> torch.Tensor:
    try:
        return _decoded_rgb(path)
    except _Unusable as exc:
        raise GansError(f"{path}: cannot read this pair image ({exc}); fix or remove it "
                        f"from {folder}") from None


def _two_folders(folder: Path) -> tuple:
    for side in ("A", "B"):
        if not (folder / side).is_dir():
            raise GansError(f"{folder} has no {side}/ folder; paired folders need A/ (inputs) "
                            "and B/ (targets) with files of the same names")
    a_files = {p.name: p for p in _image_files(folder / "A")}
    b_files = {p.name: p for p in _image_files(folder / "B")}
    for side, mine, other, other_side in (("A", a_files, b_files, "B"),
                                          ("B", b_files, a_files, "A")):
        lonely = sorted(set(mine) - set(other))
        if lonely:
            raise GansError(f"{folder / side / lonely[0]} has no partner in {other_side}/ "
                            f"({len(lonely)} unmatched in {side}/); give each input a target "
                            "of the same file name, or remove it")
    if not a_files:
        raise GansError(f"{folder}/A and {folder}/B hold no images; put the pairs there")
    inputs, targets = [], []
    for name in sorted(a_files):
        a, b = _pair_image(a_files[name], folder), _pair_image(b_files[name], folder)
        if a.shape != b.shape:
            raise GansError(f"{folder}: pair {name} has sizes {a.shape[2]}x{a.shape[1]} in A/ "
                            f"and {b.shape[2]}x{b.shape[1]} in B/; an input and its target "
                            "must have the same size")
        inputs.append(a)
        targets.append(b)
    return inputs, targets


def _side_by_side(folder: Path) -> tuple:
    paths = _image_files(folder)
    if not paths:
        raise GansError(f"{folder} holds no images; put side-by-side AB pairs there (input "
                        "left, target right), or folders A/ and B/")
    inputs, targets = [], []
    for path in paths:
        ab = _pair_image(path, folder)
        width = ab.size(2)
        if width % 2:
            raise GansError(f"{path} is {width} px wide, an odd number: a side-by-side pair is "
                            "two images of equal width (input left, target right)")
        inputs.append(ab[:, :, :width // 2])
        targets.append(ab[:, :, width // 2:])
    return inputs, targets


def decoded_image(source) -> torch.Tensor:
    """uint8 (3, H, W) of an image file, its bytes (an upload) or a PIL image of any mode
    (transparency on white), or a one-line GansError saying why it cannot be used."""
    if isinstance(source, (bytes, bytearray)):
        try:
            return _decoded_rgb(source)
        except _Unusable as exc:
            raise GansError(f"the uploaded image cannot be read ({exc}); send a PNG or JPEG") from None
    if not isinstance(source, (str, Path)):
        return TF.pil_to_tensor(_to_rgb(source))
    path = Path(source)
    if not path.is_file():
        raise GansError(f"{path}: no such image file; pass a PNG or JPEG")
    try:
        return _decoded_rgb(path)
    except _Unusable as exc:
        raise GansError(f"{path}: cannot read it ({exc}); pass a PNG or JPEG") from None


def _square(image: torch.Tensor, resolution: int) -> torch.Tensor:
    return TF.resize(TF.center_crop(image, [min(image.shape[-2:])]), [resolution, resolution],
                     antialias=True)
