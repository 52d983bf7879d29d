"""pix2pix (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator, for paired
image-to-image translation (sketch -> image) at 32 to 256 px.

Generator (`unet`): an encoder of stride-2 4x4 convolutions down to 1x1, and a decoder of
stride-2 transposed convolutions back up, each decoder level concatenated with the encoder
level of its size (the skips carry the sketch's lines straight to the output). There is no
latent: as in the paper, the noise is dropout (0.5) in the three innermost decoder levels,
kept on when sampling, so one sketch gives slightly different images under different seeds.

Discriminator (`patchgan`): sees the input and an image side by side (channels concatenated)
and scores each overlapping patch real or fake; `receptive_field(layers)` is the patch size:

    layers   1    2    3    4
    patch   16   34   70  142     (the paper's 70x70 PatchGAN is layers 3, for 256 px)

so 32 px images take layers 1 or 2, 64 px 2, 128-256 px 3. It returns (N, patches) logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gans.errors import GansError
from gans.registry import DISCRIMINATORS, GENERATORS


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise GansError(f"pix2pix norm must be batch or instance, got {kind!r}")


def _init_weights(module: nn.Module) -> None:
    # pix2pix's initialisation: N(0, 0.02) weights, N(1, 0.02) norm scales.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class NoiseDropout(nn.Module):
    """Dropout that stays on in eval mode: pix2pix's only source of randomness."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True) if self.p > 0 else x


@GENERATORS.register("unet")
class UNetGenerator(nn.Module):
    """U-Net from a `channels`-channel input image to a `channels`-channel image in [-1, 1].

    `width`: channels of the first level, doubling per level up to 8x width. `dropout`: in the
    three innermost decoder levels (0 turns the noise off: a deterministic translator).
    """

    translates_images = True

    def __init__(self, width: int = 64, channels: int = 1, resolution: int = 32,
                 dropout: float = 0.5, norm: str = "batch"):
        super().__init__()
        levels = math.log2(resolution) if resolution > 0 else 0
        if levels != int(levels) or not 5 <= levels <= 8:
            raise GansError("unet needs data.resolution to be 32, 64, 128 or 256, "
                            f"got {resolution}")
        if not 0 <= dropout < 1:
            raise GansError(f"model.generator.dropout must be in [0, 1), got {dropout}")
        self.channels, self.resolution = channels, resolution
        widths = [min(width * 2 ** i, width * 8) for i in range(int(levels))]
        self.down = nn.ModuleList()
        previous = channels
        for i, ch in enumerate(widths):
            # No norm on the first level (as the paper) nor the 1x1 bottleneck, whose batch
            # statistics over a single pixel would be degenerate at small batches.
            outer, inner = i == 0, i == len(widths) - 1
            layers = [] if outer else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(previous, ch, 4, 2, 1, bias=outer or inner))
            if not (outer or inner):
                layers.append(_norm(norm, ch))
            self.down.append(nn.Sequential(*layers))
            previous = ch
        self.up = nn.ModuleList()
        for i in reversed(range(len(widths))):
            inner, outer = i == len(widths) - 1, i == 0
            in_ch = widths[i] if inner else widths[i] * 2  # the skip doubles the input
            out_ch = channels if outer else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=outer)]
            if outer:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, out_ch))
                if len(widths) - 1 - i < 3:
                    layers.append(NoiseDropout(dropout))
            self.up.append(nn.Sequential(*layers))
        _init_weights(self)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        skips, x = [], condition
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], 1)
        return x


def receptive_field(layers: int) -> int:
    """The side in pixels of the patch each PatchGAN logit sees: `layers` stride-2 4x4
    convolutions, then two stride-1 ones."""
    size = 1
    for stride in reversed([2] * layers + [1, 1]):
        size = (size - 1) * stride + 4
    return size


@DISCRIMINATORS.register("patchgan")
class PatchGANDiscriminator(nn.Module):
    """D(image, condition): the pair (channels concatenated) -> one logit per patch of
    `receptive_field(layers)` px, shape (N, patches). `norm`: batch (the paper), instance, or
    none (for gradient penalties, which need each logit to depend on its own image only)."""

    def __init__(self, width: int = 64, channels: int = 1, resolution: int = 32,
                 layers: int = 3, norm: str = "batch"):
        super().__init__()
        if layers < 1 or resolution // 2 ** layers < 4:
            raise GansError(f"model.discriminator.layers must be at least 1 and leave 4 px or "
                            f"more ({resolution} px / 2^layers), got {layers}")
        wrap = (lambda ch: []) if norm == "none" else (lambda ch: [_norm(norm, ch)])
        net = [nn.Conv2d(2 * channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            out = width * min(2 ** i, 8)
            net += [nn.Conv2d(ch, out, 4, stride, 1, bias=norm == "none"), *wrap(out),
                    nn.LeakyReLU(0.2)]
            ch = out
        net.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*net)
        self.layers = layers
        _init_weights(self)

    @property
    def patch_size(self) -> int:
        return receptive_field(self.layers)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None or labels.shape != images.shape:
            raise GansError("patchgan scores (image, input image) pairs: pass the input images "
                            f"as labels, shaped like the images {tuple(images.shape)}")
        return self.net(torch.cat([labels, images], 1)).flatten(1)
