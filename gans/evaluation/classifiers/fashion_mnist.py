"""A small CNN that labels Fashion-MNIST images, shipped with its trained weights.

`gans eval` uses it to see which classes a generator produces (gans.evaluation.coverage). It takes generator
output as is: images in [-1, 1], shape (N, 1 or 3, H, W) at any resolution. Colour is averaged to
one channel and the image is resized to 28x28 (bilinear, antialiased when shrinking) before the
network sees it, so 32x32 and 64x64 samples need no preparation. uint8 images (0..255, as
gans.data loads them) are accepted too and scaled to [-1, 1] first.

The weights next to this file (fashion_mnist.pt, a plain state_dict) come from
`python -m gans.evaluation.classifiers.train`; fashion_mnist.json beside them records the test accuracy,
epochs, seed and command that produced them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gans.data import as_signed
from gans.errors import GansError

# torchvision.datasets.FashionMNIST.classes, in label order
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
INPUT_SIZE = 28
WEIGHTS_PATH = Path(__file__).with_name("fashion_mnist.pt")
REBUILD = "python -m gans.evaluation.classifiers.train"


def to_classifier_input(images: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, H, W) in [-1, 1] (or uint8) -> float (N, 1, 28, 28) in [-1, 1]."""
    if images.dim() != 4 or images.size(1) not in (1, 3):
        raise GansError(f"the Fashion-MNIST classifier wants images shaped (N, 1 or 3, H, W), "
                        f"got {tuple(images.shape)}; pass a batch of 1- or 3-channel images")
    if images.dtype == torch.uint8:
        images = as_signed(images)
    elif not images.is_floating_point():
        raise GansError(f"the Fashion-MNIST classifier wants float images in [-1, 1] or uint8, "
                        f"got {images.dtype}; convert the batch first")
    if images.size(1) == 3:
        images = images.mean(dim=1, keepdim=True)
    if tuple(images.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        shrinking = images.size(-1) > INPUT_SIZE or images.size(-2) > INPUT_SIZE
        images = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                               align_corners=False, antialias=shrinking)
    return images


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv -> 2x2 max pool -> batch norm -> ReLU: halves the size.

    Pooling before batch norm and ReLU (rather than after) gives the same kind of features at a
    quarter of the normalisation work, which is most of the training time on a CPU.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FashionMNISTClassifier(nn.Module):
    """28x28 -> 14x14 -> 7x7 -> 3x3 conv features, then one linear layer to 10 logits."""

    def __init__(self, width: int = 32, num_classes: int = len(CLASS_NAMES)):
        super().__init__()
        self.features = nn.Sequential(
            conv_block(1, width),  # 14x14
            conv_block(width, 2 * width),  # 7x7
            conv_block(2 * width, 4 * width),  # 3x3
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3),
                                  nn.Linear(4 * width * 3 * 3, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for images in [-1, 1] of shape (N, 1 or 3, H, W), any H and W."""
        return self.head(self.features(to_classifier_input(images)))


def weights_sha256(path: str | Path | None = None) -> str:
    """SHA-256 (hex) of the weights file: names the classifier behind a coverage figure."""
    path = Path(path or WEIGHTS_PATH)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise GansError(f"cannot read Fashion-MNIST classifier weights {path} "
                        f"({exc.__class__.__name__}); rebuild them with {REBUILD}") from None


def load_classifier(device: str | torch.device = "cpu",
                    path: str | Path | None = None) -> nn.Module:
    """The shipped classifier (or the weights at `path`), in eval mode on `device`."""
    path = Path(path or WEIGHTS_PATH)
    if not path.is_file():
        raise GansError(f"Fashion-MNIST classifier weights {path} are missing; "
                        f"rebuild them with {REBUILD} --out {path}")
    model = FashionMNISTClassifier()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # unpickling, zip and shape errors all mean "not our weights"
        raise GansError(f"Fashion-MNIST classifier weights {path} are unreadable or do not fit "
                        f"the network ({exc.__class__.__name__}); rebuild them with "
                        f"{REBUILD} --out {path}") from None
    return model.to(device).eval()
