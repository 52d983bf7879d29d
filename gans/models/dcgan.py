"""DCGAN (Radford et al. 2016) for square images of 32 or 64 px (any power of two from 16 up).

Generator: z -> 4x4 -> transposed convolutions doubling the size -> tanh image in [-1, 1].
Discriminator: the mirror, strided convolutions down to 4x4 -> one logit per image.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gans.errors import GansError
from gans.registry import DISCRIMINATORS, GENERATORS


def _num_doublings(resolution: int) -> int:
    steps = math.log2(resolution) - 2 if resolution > 0 else -1
    if steps < 2 or steps != int(steps):
        raise GansError(f"DCGAN needs data.resolution to be a power of two >= 16 (e.g. 32 or 64), "
                        f"got {resolution}")
    return int(steps)


def _init_weights(module: nn.Module) -> None:
    # The DCGAN paper's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for BN scales.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, width: int = 64, channels: int = 1,
                 resolution: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        doublings = _num_doublings(resolution)
        ch = width * 2 ** (doublings - 1)
        layers = [nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.size(0), self.latent_dim, 1, 1))


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """`norm`: batch (the paper), or none (needed by gradient penalties, which assume each
    logit depends only on its own image). `spectral_norm` wraps every convolution."""

    def __init__(self, width: int = 64, channels: int = 1, resolution: int = 32,
                 norm: str = "batch", spectral_norm: bool = False):
        super().__init__()
        if norm not in ("batch", "none"):
            raise GansError(f"model.discriminator.norm must be batch or none, got {norm!r}")
        doublings = _num_doublings(resolution)
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        layers = [wrap(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(doublings - 1):
            layers.append(wrap(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        layers.append(wrap(nn.Conv2d(ch, 1, 4, 1, 0)))
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(images).view(images.size(0))
